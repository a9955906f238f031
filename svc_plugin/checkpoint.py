"""Loading snapshots, and weights-only checkpoints that are safe to load from an untrusted source.

A network pickle (the upstream format) executes the class source it carries when loaded. The
weights-only format stores nothing but tensors, numbers and strings: one `torch.save` file holding
each network's state dict and a JSON config naming one of the project's own classes and its
constructor arguments, so `torch.load(weights_only=True)` reads it and no code travels with it.
A snapshot of the authors' StyleSV code is read as data and converted (svc_plugin.reference).
"""

import json
import pickle
import pickletools
import zipfile

import click
import torch

import dnnlib
import legacy
from svc_plugin import fileio
from svc_plugin import reference
from svc_plugin import runs

FORMAT = 'stylesv-weights-1'
NETWORK_KEYS = ('G', 'D', 'G_ema', 'augment_pipe')

# The reference's motion noise in this project's layout: the same noise draws the same frames.
motion_z_from_reference = reference.motion_z_from_reference

# The only classes a weights-only checkpoint may name; rebuilt from this codebase, never from the file.
SAFE_CLASSES = (
    'training.networks_stylegan3.Generator',
    'training.networks_stylegan2.Generator',
    'training.networks_stylegan2.Discriminator',
    'training.augment.AugmentPipe',
    'svc_plugin.networks.VideoGenerator',
    'svc_plugin.discriminator.VideoDiscriminator',
)

#----------------------------------------------------------------------------

class NetworkLoadError(Exception):
    """A network file that cannot be used; the message is one line meant for the user."""

def first_line(err):
    """'<type>: <first line of the message>' of an exception raised by a library."""
    text = str(err).strip()
    return f'{type(err).__name__}: {text.splitlines()[0]}' if text else type(err).__name__

#----------------------------------------------------------------------------

def class_name_of(module):
    """The dotted name of the project class that rebuilds `module` (which may come from a pickle's embedded source)."""
    name = type(module).__name__
    if name == 'Generator':
        stylegan3 = hasattr(module.synthesis, 'input')  # the Fourier-feature input exists only in StyleGAN3
        return 'training.networks_stylegan3.Generator' if stylegan3 else 'training.networks_stylegan2.Generator'
    matches = [c for c in SAFE_CLASSES if c.rsplit('.', 1)[1] == name]
    if len(matches) != 1:
        raise NetworkLoadError(f'{name} cannot be exported as weights only: not one of the project\'s network classes')
    return matches[0]

def module_config(module):
    """JSON-serialisable constructor call of a persistent module."""
    if len(module.init_args) > 0:
        raise NetworkLoadError(f'{type(module).__name__} was built with positional arguments; cannot export it as weights only')
    return dict(class_name=class_name_of(module), init_kwargs=json.loads(json.dumps(module.init_kwargs)))

#----------------------------------------------------------------------------

def save_weights(path, snapshot):
    """Write the networks of a snapshot dict (keys as in network-snapshot-*.pkl) as a weights-only checkpoint."""
    config = dict(format=FORMAT, training_set_kwargs=snapshot.get('training_set_kwargs'), fps=snapshot.get('fps'), networks={})
    tensors = {}
    for key in NETWORK_KEYS:
        module = snapshot.get(key)
        if module is not None:
            config['networks'][key] = module_config(module)
            tensors[key] = {name: value.detach().cpu() for name, value in module.state_dict().items()}
    fileio.replace_atomically(path, fileio.torch_writer(dict(config=json.dumps(config), tensors=tensors)))

def load_weights(f, device='cpu'):
    """Rebuild the networks of a weights-only checkpoint (a file object) from the project's own classes."""
    if not zipfile.is_zipfile(f):
        raise NetworkLoadError('truncated or damaged weights-only checkpoint (its zip directory is missing); copy it again')
    f.seek(0)
    with zipfile.ZipFile(f) as zf:
        if not any(name.endswith('/data.pkl') for name in zf.namelist()):
            raise NetworkLoadError('a zip archive, not a weights-only checkpoint or network pickle')
    f.seek(0)
    try:
        data = torch.load(f, map_location='cpu', weights_only=True)
        config = json.loads(data['config'])
    except (pickle.UnpicklingError, RuntimeError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as err:
        raise NetworkLoadError(f'damaged weights-only checkpoint ({type(err).__name__}); copy it again') from None
    if config.get('format') != FORMAT:
        raise NetworkLoadError(f'unknown weights-only format {config.get("format")!r}, expected {FORMAT!r}')
    snapshot = dict(training_set_kwargs=config.get('training_set_kwargs'), fps=config.get('fps'), augment_pipe=None)
    for key, net in config['networks'].items():
        if net['class_name'] not in SAFE_CLASSES:
            raise NetworkLoadError(f'weights-only checkpoint names class {net["class_name"]!r}, which is not a project network class')
        try:
            module = dnnlib.util.construct_class_by_name(class_name=net['class_name'], **net['init_kwargs'])
            module.load_state_dict(data['tensors'][key])
        except (TypeError, ValueError, KeyError, RuntimeError) as err: # Options or tensors that this codebase's class does not take.
            raise NetworkLoadError(f'its {key} does not fit this codebase\'s {net["class_name"]} ({first_line(err)})') from None
        snapshot[key] = module.eval().requires_grad_(False).to(device)
    return snapshot

#----------------------------------------------------------------------------

# What unpickling a network file can raise: ours and NVIDIA's legacy.py fail differently on the same bytes.
PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, AssertionError, ValueError, KeyError, AttributeError, ImportError, TypeError,
    IndexError, RuntimeError, UnicodeDecodeError)

def pickle_problem(f, err):
    """Why a network pickle did not load, in words: read its opcodes (which executes nothing) to tell a truncated
    file from one that is no pickle at all, and a complete pickle from what it holds."""
    head = f.read(1)
    f.seek(0)
    if head == b'':
        return 'the file is empty'
    if head != pickle.PROTO: # Every network pickle starts with a protocol opcode (protocol 2 or later).
        return 'not a network pickle or weights-only checkpoint'
    try:
        for _ in pickletools.genops(f):
            pass
    except ValueError as scan:
        if any(words in str(scan) for words in ('exhausted', 'remain', 'not enough data')): # The stream ended inside an opcode.
            return 'the file is truncated (an interrupted copy or download?); copy it again'
        return 'not a network pickle or weights-only checkpoint'
    cause = err.__cause__ or err
    if isinstance(cause, (ImportError, AttributeError)):
        return f'the pickle needs code that is not installed ({first_line(cause)})'
    return 'a complete pickle, but not a network snapshot: it holds no generator (G, D and G_ema)'

def load_network(path_or_url, device='cpu'):
    """Load a snapshot dict from a network pickle (ours, NVIDIA's, or the authors' StyleSV converted: see
    svc_plugin.reference; its D is None where it has no counterpart, the reason in 'D_refused') or a weights-only checkpoint.

    Every way a file can be unusable ends in NetworkLoadError with a one-line message.
    """
    try:
        with dnnlib.util.open_url(path_or_url, verbose=False) as f:
            weights_only = f.read(4) == b'PK\x03\x04'  # torch.save writes a zip archive; a pickle starts otherwise
            f.seek(0)
            if weights_only:
                return load_weights(f, device=device)
            try:
                if reference.is_reference_pickle(f):
                    snapshot = reference.load_snapshot(f)
                else:
                    snapshot = legacy.load_network_pkl(f)
            except reference.UnsupportedReference as err:
                raise NetworkLoadError(f'a snapshot of the authors\' code that cannot be converted exactly: {err}') from None
            except PICKLE_ERRORS as err:
                f.seek(0)
                raise NetworkLoadError(pickle_problem(f, err)) from None
    except NetworkLoadError as err:
        raise NetworkLoadError(f'cannot load {path_or_url}: {err}') from None
    except FileNotFoundError:
        raise NetworkLoadError(f'network file not found: {path_or_url}') from None
    except IsADirectoryError:
        raise NetworkLoadError(f'expected a network file, got a directory: {path_or_url}') from None
    except OSError as err:
        raise NetworkLoadError(f'cannot read {path_or_url}: {err.strerror or err}') from None
    for key in NETWORK_KEYS:
        if isinstance(snapshot.get(key), torch.nn.Module):
            snapshot[key] = snapshot[key].to(device)
    return snapshot

def resolve_network(network, runs_dir=runs.RUNS_DIR):
    """`network` itself, or for 'latest' the newest snapshot of the newest run under runs_dir."""
    if network != 'latest':
        return network
    path = runs.newest_snapshot(runs_dir)
    if path is None:
        raise NetworkLoadError(f'--network=latest: no network-snapshot-*.pkl in the runs under {runs_dir}/; train first '
            '(python train_video.py ...) or give --network=PATH')
    return path

def is_video_generator(G):
    """A video generator is one whose synthesis network has a motion encoder (svc_plugin.networks.VideoGenerator)."""
    return hasattr(getattr(G, 'synthesis', None), 'motion_encoder')

def generator_of(snapshot, path_or_url, video=True, needed_by='video generation'):
    """G_ema of a loaded snapshot, in eval mode without grads; with `video`, insist that it is a video generator
    (`needed_by` names what needs one, for the message)."""
    G = snapshot.get('G_ema')
    if not isinstance(G, torch.nn.Module):
        raise NetworkLoadError(f'{path_or_url} holds no generator (no G_ema)')
    if video and not is_video_generator(G):
        raise NetworkLoadError(f'{path_or_url} holds an image-only generator, not a video generator ({needed_by} needs one); fine-tune it '
            f'into one first: python train_video.py --stage=video --resume={path_or_url} --data=...')
    return G.eval().requires_grad_(False)

def load_generator(path_or_url, device='cpu', video=True):
    """G_ema of a network file; see generator_of()."""
    return generator_of(load_network(path_or_url, device=device), path_or_url, video=video)

#----------------------------------------------------------------------------

@click.command()
@click.option('--source', help='Network pickle to convert', metavar='PKL', required=True)
@click.option('--dest',   help='Weights-only checkpoint to write (.pt)', metavar='PT', required=True)
def main(source, dest):
    """Convert a network pickle into a weights-only checkpoint that loads without executing code.

    Example: python -m svc_plugin.checkpoint --source=network-snapshot-001000.pkl --dest=network-001000.pt
    """
    try:
        snapshot = load_network(source)
        save_weights(dest, snapshot)
    except NetworkLoadError as err:
        raise click.ClickException(str(err))
    except OSError as err:
        raise click.ClickException(str(err))
    print(f'wrote {dest}' + (f' without D ({snapshot["D_refused"]})' if 'D_refused' in snapshot else ''))

if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
