"""Video dataset tool: footage -> the video dataset layout that svc_plugin/dataset.py reads.

Sources: a folder (searched recursively) of video files (mp4, avi, mov, webm, mkv; decoded by the
ffmpeg that imageio-ffmpeg bundles) and/or frame folders, one video file, a zip of the same, or `demo`
(the built-in synthetic time-lapses of svc_plugin/demo.py). Every video is resampled to --fps by frame
selection, centre-cropped (or squashed) to a square, resized with a Lanczos filter and optionally cut
into --chunk-frame clips. The output is a zip or folder with one folder of zero-padded frames per
video plus dataset.json (fps, labels, sources), built under a temporary name and renamed when complete.
"""

import contextlib
import errno
import functools
import io
import itertools
import json
import math
import multiprocessing
import os
import shutil
import tempfile
import zipfile

import click
import imageio_ffmpeg
import PIL.Image
import tqdm

from svc_plugin import demo
from svc_plugin import fileio
from svc_plugin import video_io

VIDEO_EXTENSIONS = ('.avi', '.mkv', '.mov', '.mp4', '.webm')
MAX_VIDEO_FRAMES = 10**6    # Frames kept per source video: frame names have 6 digits.

#----------------------------------------------------------------------------
# Sources: one picklable task dict per source video, for the worker processes.

def list_sources(source, fps=None, seed=0, demo_videos=16, demo_frames=64):
    """(tasks, skipped): a task per source video in sorted order, (name, reason) per file that is not one.
    Each task has kind, name, label (None without labels) and fps (None = unknown or read from the file)."""
    if source == 'demo':
        scenes = demo.random_scenes(demo_videos, seed)
        return [dict(kind='demo', name=None, label=None, fps=fps or video_io.DEFAULT_FPS, scene=scene, num_frames=demo_frames) for scene in scenes], []
    if not os.path.exists(source):
        raise IOError(f'--source does not exist: {source}')
    if os.path.isfile(source) and os.path.splitext(source)[1].lower() in VIDEO_EXTENSIONS:
        return [dict(kind='video', name=os.path.basename(source), label=None, fps=None, path=source)], []
    if os.path.isdir(source):
        fnames = [os.path.relpath(os.path.join(root, f), source).replace(os.sep, '/') for root, _dirs, files in os.walk(source) for f in files]
        info = read_info(read_file(os.path.join(source, 'dataset.json'))) if 'dataset.json' in fnames else {}
        tasks, skipped = classify_files(fnames, os.path.basename(os.path.normpath(source)))
    elif source.lower().endswith('.zip'):
        try:
            with zipfile.ZipFile(source) as zf:
                fnames = [f for f in zf.namelist() if not f.endswith('/')]
                info = read_info(zf.read('dataset.json')) if 'dataset.json' in fnames else {}
        except zipfile.BadZipFile:
            raise IOError(f'--source is not a valid zip file: {source}') from None
        tasks, skipped = classify_files(fnames, os.path.splitext(os.path.basename(source))[0])
    else:
        raise IOError(f'--source must be a folder, a .zip, a video file ({", ".join(VIDEO_EXTENSIONS)}) or "demo": {source}')
    if len(tasks) == 0:
        found = f'only {plural(len(skipped), "other file")}, e.g. {skipped[0][0]}' if skipped else 'it is empty'
        raise IOError(f'--source {source} holds no video file ({", ".join(VIDEO_EXTENSIONS)}) and no folder of images: {found}')
    assign_labels(tasks, info.get('labels'))
    for task in tasks:
        task['fps'] = info.get('fps') if task['kind'] == 'frames' else None # Frame folders have no rate of their own.
        if source.lower().endswith('.zip'):
            task.update(kind='zip_' + task['kind'], zip=source)
        elif task['kind'] == 'video':
            task['path'] = os.path.join(source, task.pop('member'))
        else:
            task['paths'] = [os.path.join(source, member) for member in task.pop('members')]
    return tasks, skipped

def classify_files(fnames, root_name):
    """Tasks for the video files and frame folders among relative paths (as 'member'/'members'), plus the
    other files as skipped. A frame folder is a folder holding images; images at the top make one video."""
    PIL.Image.init()
    tasks, folders, skipped = [], {}, []
    for fname in sorted(fnames):
        ext = os.path.splitext(fname)[1].lower()
        if any(part.startswith('.') or part == '__MACOSX' for part in fname.split('/')) or fname == 'dataset.json':
            continue
        if ext in VIDEO_EXTENSIONS:
            tasks.append(dict(kind='video', name=fname, member=fname))
        elif ext in PIL.Image.EXTENSION:
            folders.setdefault(os.path.dirname(fname), []).append(fname)
        else:
            skipped.append((fname, 'not a video'))
    tasks += [dict(kind='frames', name=folder or root_name, members=members) for folder, members in folders.items()]
    return sorted(tasks, key=lambda task: task['name']), skipped

def read_info(data):
    """The source's own dataset.json (labels, fps), e.g. when re-converting a video dataset."""
    try:
        info = json.loads(data)
    except ValueError:
        raise IOError('the source dataset.json is not valid JSON') from None
    if not isinstance(info, dict):
        raise IOError('the source dataset.json must hold an object with "labels" and/or "fps"')
    return info

def assign_labels(tasks, labels):
    """Give every task its label from the source dataset.json: keyed by the video's path, by that path
    without its extension, or (upstream per-frame form) by its first frame."""
    if labels is None:
        for task in tasks:
            task['label'] = None
        return
    labels = dict(labels)
    missing = []
    for task in tasks:
        keys = [task['name'], os.path.splitext(task['name'])[0]] + task.get('members', [])[:1]
        found = [labels[key] for key in keys if key in labels]
        task['label'] = found[0] if found else None
        if not found:
            missing.append(task['name'])
    if len(missing) > 0:
        raise IOError(f'the source dataset.json has no label for {len(missing)} video(s), e.g. {missing[0]}')

#----------------------------------------------------------------------------
# Decoding: frames of one source video as PIL images.

class UndecodableError(Exception):
    """A source video whose file cannot be read or decoded (it is skipped, not fatal)."""

DECODE_ERRORS = (OSError, RuntimeError, ValueError, SyntaxError, EOFError, zipfile.BadZipFile, PIL.Image.DecompressionBombError)

@contextlib.contextmanager
def open_source(task, resolution, notes):
    """Context giving (fps or None, iterator of PIL images) of one source video; it closes files and ffmpeg
    on exit. Read or decode failures surface as UndecodableError; conversions are recorded in `notes`."""
    with contextlib.ExitStack() as stack:
        try:
            fps, frames = open_frames(task, resolution, notes, stack)
        except DECODE_ERRORS as err:
            raise UndecodableError(first_line(err)) from None
        yield fps, undecodable_on_error(frames)

def open_frames(task, resolution, notes, stack):
    kind = task['kind']
    if kind == 'demo':
        return task['fps'], (PIL.Image.fromarray(demo.render_frame(task['scene'], t, resolution)) for t in range(task['num_frames']))
    if kind == 'frames':
        return task['fps'], (load_image(read_file(path)) for path in task['paths'])
    zf = stack.enter_context(zipfile.ZipFile(task['zip'])) if kind.startswith('zip_') else None
    if kind == 'zip_frames':
        return task['fps'], (load_image(zf.read(member)) for member in task['members'])
    path = task['path'] if kind == 'video' else zf.extract(task['member'], stack.enter_context(tempfile.TemporaryDirectory()))
    reader = imageio_ffmpeg.read_frames(path)
    stack.callback(reader.close)
    meta = next(reader)
    notes.update(pixel_format_notes(meta.get('pix_fmt', '')))
    width, height = meta['size']
    fps = meta['fps'] if math.isfinite(meta['fps']) and meta['fps'] > 0 else None
    return fps, (PIL.Image.frombuffer('RGB', (width, height), buf, 'raw', 'RGB', 0, 1) for buf in reader)

def undecodable_on_error(frames):
    try:
        yield from frames
    except DECODE_ERRORS as err:
        raise UndecodableError(first_line(err)) from None

def read_file(path):
    with open(path, 'rb') as f:
        return f.read()

def load_image(data):
    image = PIL.Image.open(io.BytesIO(data))
    image.load() # Decode here, so that a broken file fails while reading, not while writing.
    return image

def first_line(err):
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__

def pixel_format_notes(pix_fmt):
    """What converting a video of this ffmpeg pixel format (e.g. 'yuv420p(progressive)') to RGB changes."""
    fmt = pix_fmt.split('(')[0].strip()
    notes = set()
    if fmt.startswith(('gray', 'ya')):
        notes.add('grayscale')
    if fmt.startswith(('yuva', 'rgba', 'bgra', 'argb', 'abgr', 'gbrap', 'ya')):
        notes.add('alpha')
    return notes

#----------------------------------------------------------------------------
# Frame processing.

def select_frames(frames, src_fps, fps):
    """Resample a frame stream to `fps` by frame selection: output frame k is the last source frame at or
    before time k / fps (frames repeat when the source is slower). Unknown source rates pass through."""
    if fps is None or src_fps is None or abs(src_fps - fps) < 1e-3:
        yield from frames
        return
    step = src_fps / fps # source frames per output frame
    k = 0
    for i, frame in enumerate(frames):
        while math.floor(k * step + 1e-6) == i:
            yield frame
            k += 1

def to_rgb(image, notes):
    """The frame in RGB; records in `notes` whether it was grayscale or had an alpha channel (dropped)."""
    if image.mode == 'RGB':
        return image
    if image.mode in ('1', 'L', 'LA', 'La', 'F') or image.mode.startswith('I'):
        notes.add('grayscale')
    if image.mode in ('RGBA', 'RGBa', 'LA', 'La', 'PA') or 'transparency' in image.info:
        notes.add('alpha')
    return image.convert('RGB')

def square_frame(image, resolution, crop, notes):
    """Centre-crop (crop='center') or squash (crop='none') to a square of `resolution` pixels with a
    Lanczos filter, whose support widens with the reduction, so downscaling does not alias."""
    width, height = image.size
    box = (0, 0, width, height)
    if crop == 'center':
        side = min(width, height)
        box = ((width - side) // 2, (height - side) // 2, (width - side) // 2 + side, (height - side) // 2 + side)
    if min(box[2] - box[0], box[3] - box[1]) < resolution:
        notes.add('upscaled')
    return image.resize((resolution, resolution), PIL.Image.LANCZOS, box=box)

def save_frame(image, path, fmt):
    if fmt == 'png':
        image.save(path, format='png', compress_level=1) # ~10x smaller than level 0 at the same decode speed
    else:
        image.save(path, format='jpeg', quality=95, subsampling=0)

#----------------------------------------------------------------------------
# Worker: one source video -> chunk folders in the staging area.

def convert_video(task, opts, staging):
    """Decode, resample, square and write one source video as chunk folders <staging>/<index>/<chunk>/;
    return what happened (kept chunk lengths, or why the video was skipped) as a small dict."""
    folder = os.path.join(staging, f'{task["index"]:07d}')
    notes = set()
    result = dict(index=task['index'], chunks=[], dropped=0, notes=notes, fps=None, error=None)
    try:
        with open_source(task, opts['resolution'], notes) as (src_fps, frames):
            result['fps'] = src_fps
            frames = select_frames(frames, src_fps, opts['fps'])
            count = write_chunks(frames, folder, opts, notes)
    except UndecodableError as err:
        result['error'] = f'undecodable ({err})'
        return result
    limit = opts['chunk'] or max(count, 1)
    lengths = [min(limit, count - start) for start in range(0, count, limit)]
    result['chunks'] = [(c, n) for c, n in enumerate(lengths) if n >= opts['min_frames']]
    result['dropped'] = len(lengths) - len(result['chunks'])
    for c, n in enumerate(lengths):
        if n < opts['min_frames']:
            shutil.rmtree(os.path.join(folder, f'{c:06d}'))
    if count == MAX_VIDEO_FRAMES and opts['max_frames'] is None:
        notes.add('cut')
    if len(result['chunks']) == 0: # With chunk >= min_frames, only a video of fewer than min_frames frames keeps no chunk.
        result.update(error=f'too short ({count} frames < --min-frames={opts["min_frames"]})', dropped=0)
    return result

def write_chunks(frames, folder, opts, notes):
    """Write the first max_frames frames as consecutive chunks of opts['chunk'] frames; return the count."""
    limit = min(opts['max_frames'] or MAX_VIDEO_FRAMES, MAX_VIDEO_FRAMES)
    chunk = opts['chunk'] or limit
    count = 0
    for k, image in enumerate(itertools.islice(frames, limit)):
        c, t = divmod(k, chunk)
        if t == 0:
            os.makedirs(os.path.join(folder, f'{c:06d}'))
        image = square_frame(to_rgb(image, notes), opts['resolution'], opts['crop'], notes)
        save_frame(image, os.path.join(folder, f'{c:06d}', f'{t:06d}.{opts["format"]}'), opts['format'])
        count = k + 1
    return count

#----------------------------------------------------------------------------
# Output: a stored zip or a folder, built under a temporary name.

class DatasetWriter:
    """Collects video folders into `<dest>.tmp<pid>` (a stored zip or a folder); commit() renames it to dest."""

    def __init__(self, dest):
        self.dest = dest
        self.tmp = fileio.temporary_path(dest)
        self.zip = zipfile.ZipFile(self.tmp, 'w', compression=zipfile.ZIP_STORED) if dest.lower().endswith('.zip') else None
        if self.zip is None:
            os.makedirs(self.tmp)

    def add_video(self, name, folder):
        if self.zip is None:
            os.rename(folder, os.path.join(self.tmp, name))
            return
        for fname in sorted(os.listdir(folder)):
            self.zip.write(os.path.join(folder, fname), f'{name}/{fname}')

    def commit(self, info):
        data = json.dumps(info, indent=1)
        if self.zip is None:
            with open(os.path.join(self.tmp, 'dataset.json'), 'w') as f:
                f.write(data)
        else:
            self.zip.writestr('dataset.json', data)
            self.zip.close()
        fileio.rename_into_place(self.tmp, self.dest)

    def discard(self):
        try:
            if self.zip is not None:
                self.zip.close()
        except OSError: # Writing the central directory fails on a full disk; the file goes anyway.
            pass
        fileio.discard(self.tmp)

#----------------------------------------------------------------------------

def convert_dataset(
    source,                 # Folder, video file, zip, or 'demo'.
    dest,                   # Output: a path ending in .zip, or a folder (absent or empty).
    resolution,             # Output frame size in pixels (a power of two).
    fps         = None,     # Target frame rate (by frame selection), None = keep the source's.
    max_frames  = None,     # Frames kept per source video (after fps), None = all (at most MAX_VIDEO_FRAMES).
    min_frames  = 1,        # Videos (and chunks) with fewer frames are dropped.
    chunk       = None,     # Cut videos into clips of this many frames, None = keep them whole.
    crop        = 'center', # 'center' = centre-crop to a square, 'none' = squash.
    fmt         = 'png',    # Frame file format: 'png' (lossless) or 'jpg' (quality 95).
    workers     = 1,        # Decoding processes.
    max_videos  = None,     # Stop after writing this many output videos, None = all.
    seed        = 0,        # Seed of the demo source.
    demo_videos = 16,       # Videos of the demo source.
    demo_frames = 64,       # Frames per video of the demo source.
    progress    = False,    # Show a progress bar (on a terminal).
):
    """Convert `source` into a video dataset at `dest`; return a summary dict (see format_summary).
    Bad input raises IOError or ValueError, and nothing is left at `dest` or under a temporary name."""
    check_options(dest, resolution, min_frames, chunk)
    tasks, skipped = list_sources(source, fps=fps, seed=seed, demo_videos=demo_videos, demo_frames=demo_frames)
    for index, task in enumerate(tasks):
        task['index'] = index
    opts = dict(resolution=resolution, fps=fps, max_frames=max_frames, min_frames=min_frames, chunk=chunk, crop=crop, format=fmt)
    writer = open_writer(dest)
    staging = None
    try:
        staging = tempfile.mkdtemp(prefix=os.path.basename(writer.tmp) + '.', dir=os.path.dirname(os.path.abspath(dest)))
        summary, info = write_videos(tasks, skipped, opts, writer, staging, workers, max_videos, progress)
        if summary['videos'] == 0:
            raise IOError(f'no video written: {describe_skipped(summary["skipped"])}')
        if source == 'demo':
            del info['sources'] # Nothing to trace back to.
        writer.commit(info)
    except BaseException as err:
        writer.discard()
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            raise IOError(f'cannot write {dest}: {os.strerror(err.errno)} (disk full or over the file size limit); '
                'nothing was written: free some space or choose another --dest') from None
        raise
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return dict(summary, dest=dest, resolution=resolution, fps=info['fps'])

def open_writer(dest):
    """The DatasetWriter of dest, its folder created; a dest that cannot be created is a one-line IOError."""
    parent = os.path.dirname(os.path.abspath(dest))
    existing = parent
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise IOError(f'--dest {dest} cannot be created: {existing} is a file, not a folder')
    try:
        os.makedirs(parent, exist_ok=True)
        return DatasetWriter(dest)
    except OSError as err:
        raise IOError(f'--dest {dest} cannot be created: {err.strerror or err}') from None

def check_options(dest, resolution, min_frames, chunk):
    if resolution < 4 or resolution & (resolution - 1):
        raise ValueError(f'--resolution must be a power of two (at least 4), got {resolution}')
    if chunk is not None and not min_frames <= chunk <= MAX_VIDEO_FRAMES:
        raise ValueError(f'--chunk must be between --min-frames ({min_frames}) and {MAX_VIDEO_FRAMES}, got {chunk}')
    if os.path.isdir(dest) and (len(os.listdir(dest)) > 0 or dest.lower().endswith('.zip')):
        raise IOError(f'--dest is a folder that is not empty (or is named .zip): {dest}')
    if os.path.isfile(dest) and not dest.lower().endswith('.zip'):
        raise IOError(f'--dest must end with .zip or name a folder: {dest}')

def write_videos(tasks, skipped, opts, writer, staging, workers, max_videos, progress):
    """Run convert_video over the tasks (in worker processes when workers > 1) and add the kept chunks to
    the writer in source order. Returns (summary counts, dataset.json contents)."""
    summary = dict(videos=0, frames=0, dropped=0, skipped=list(skipped), notes={}, source_fps=set(), stopped=False)
    info = dict(fps=opts['fps'], labels=[], sources={})
    work = functools.partial(convert_video, opts=opts, staging=staging)
    with (multiprocessing.Pool(workers) if workers > 1 else contextlib.nullcontext()) as pool:
        results = pool.imap(work, tasks) if pool is not None else map(work, tasks)
        for result in tqdm.tqdm(results, total=len(tasks), unit='video', disable=None if progress else True):
            task = tasks[result['index']]
            folder = os.path.join(staging, f'{task["index"]:07d}')
            summary['dropped'] += result['dropped']
            if result['error'] is not None:
                summary['skipped'].append((task['name'] or f'demo video {task["index"]}', result['error']))
            for c, length in result['chunks'][:max_videos - summary['videos'] if max_videos else None]:
                name = video_name(task['index'], len(tasks), c if opts['chunk'] else None, opts)
                writer.add_video(name, os.path.join(folder, f'{c:06d}'))
                summary['videos'] += 1
                summary['frames'] += length
                info['sources'][name] = task['name']
                info['labels'].append([name, task['label']])
            for note in result['notes'] if result['error'] is None else []:
                summary['notes'][note] = summary['notes'].get(note, 0) + 1
            if result['fps'] is not None and result['error'] is None:
                summary['source_fps'].add(round(float(result['fps']), 3))
            shutil.rmtree(folder, ignore_errors=True)
            if summary['videos'] == max_videos:
                summary['stopped'] = True
                break
    if all(task['label'] is None for task in tasks):
        info['labels'] = None
    if info['fps'] is None and len(summary['source_fps']) == 1:
        info['fps'] = summary['source_fps'].pop()
    if info['fps'] is not None and float(info['fps']).is_integer():
        info['fps'] = int(info['fps'])
    return summary, info

def video_name(index, num_sources, chunk, opts):
    """video<source index>[_<chunk index>], zero-padded so that names sort in source order."""
    name = f'video{index:0{max(5, len(str(num_sources - 1)))}d}'
    if chunk is None:
        return name
    max_chunks = math.ceil(min(opts['max_frames'] or MAX_VIDEO_FRAMES, MAX_VIDEO_FRAMES) / opts['chunk'])
    return f'{name}_{chunk:0{len(str(max_chunks - 1))}d}'


def write_demo_dataset(dest, num_videos=16, num_frames=64, resolution=32, fps=video_io.DEFAULT_FPS, seed=0, workers=1):
    """The built-in demo videos (svc_plugin.demo) as a dataset at `dest`, as --source=demo writes them; returns the summary."""
    return convert_dataset('demo', dest, resolution, fps=fps, seed=seed, demo_videos=num_videos, demo_frames=num_frames, workers=workers)

#----------------------------------------------------------------------------
# Summary.

def plural(n, noun):
    return f'{n} {noun}' + ('' if n == 1 else 's')

def describe_skipped(skipped):
    """'3 sources skipped (2 undecodable, 1 too short)': reasons counted by their first words."""
    counts = {}
    for _name, reason in skipped:
        key = reason.split(' (')[0]
        counts[key] = counts.get(key, 0) + 1
    return plural(len(skipped), 'source') + ' skipped (' + ', '.join(f'{n} {key}' for key, n in counts.items()) + ')'

def format_summary(summary, max_listed=20):
    """Human-readable lines: what was written, what was skipped and why, what was converted."""
    fps = f'{summary["fps"]:g} fps' if summary['fps'] is not None else 'fps unknown'
    lines = [f'Wrote {plural(summary["videos"], "video")}, {plural(summary["frames"], "frame")} '
             f'({summary["resolution"]}x{summary["resolution"]}, {fps}) to {summary["dest"]}']
    if summary['stopped']:
        lines.append('Stopped at --max-videos.')
    if summary['skipped']:
        lines.append(describe_skipped(summary['skipped']) + ':')
        lines += [f'  {name}: {reason}' for name, reason in summary['skipped'][:max_listed]]
        if len(summary['skipped']) > max_listed:
            lines.append(f'  ... and {len(summary["skipped"]) - max_listed} more')
    if summary['dropped']:
        lines.append(f'Dropped {plural(summary["dropped"], "chunk")} shorter than --min-frames.')
    explain = dict(grayscale='converted from grayscale to RGB', alpha='had an alpha channel (dropped)',
                   upscaled='smaller than --resolution (upscaled)', cut=f'cut at {MAX_VIDEO_FRAMES} frames (use --chunk)')
    lines += [f'{plural(summary["notes"][key], "video")}: {text}.' for key, text in explain.items() if key in summary['notes']]
    if summary['fps'] is None and len(summary['source_fps']) > 1:
        rates = ', '.join(f'{fps:g}' for fps in sorted(summary['source_fps']))
        lines.append(f'Sources differ in frame rate ({rates}): dataset.json has no fps; use --fps to resample.')
    return '\n'.join(lines)

#----------------------------------------------------------------------------

@click.command()
@click.option('--source',      help='Folder of videos and/or frame folders, a video file, a zip of them, or "demo"', metavar='PATH', required=True)
@click.option('--dest',        help='Output .zip or folder', metavar='PATH', required=True)
@click.option('--resolution',  help='Output frame size in pixels (a power of two)', type=int, required=True)
@click.option('--fps',         help='Target frame rate, by frame selection  [default: the source\'s]', type=click.FloatRange(min=0, min_open=True))
@click.option('--max-frames',  help=f'Frames kept per source video, after --fps  [default: all, at most {MAX_VIDEO_FRAMES}]', type=click.IntRange(min=1))
@click.option('--min-frames',  help='Drop videos (and chunks) with fewer frames', type=click.IntRange(min=1), default=1, show_default=True)
@click.option('--chunk',       help='Cut videos into clips of this many frames', type=click.IntRange(min=1))
@click.option('--crop',        help='Make frames square by centre-cropping or by squashing', type=click.Choice(['center', 'none']), default='center', show_default=True)
@click.option('--format',      'fmt', help='Frame file format', type=click.Choice(['png', 'jpg']), default='png', show_default=True)
@click.option('--workers',     help='Decoding processes', type=click.IntRange(min=1), default=min(8, os.cpu_count() or 1), show_default=True)
@click.option('--max-videos',  help='Stop after this many output videos', type=click.IntRange(min=1))
@click.option('--seed',        help='Random seed of --source=demo', type=int, default=0, show_default=True)
@click.option('--demo-videos', help='Videos of --source=demo', type=click.IntRange(min=1), default=16, show_default=True)
@click.option('--demo-frames', help='Frames per video of --source=demo', type=click.IntRange(min=1), default=64, show_default=True)
def main(**kwargs):
    """Build a video dataset (one folder of frames per video + dataset.json) from video files, frame folders,
    a zip of them, or the built-in demo time-lapses.

    \b
    Examples:
      python -m svc_plugin.dataset_tool --source=my_videos/ --dest=data/mine_256.zip --resolution=256
      python -m svc_plugin.dataset_tool --source=drive.mp4 --dest=data/ytb.zip --resolution=256 --chunk=512 --min-frames=128
      python -m svc_plugin.dataset_tool --source=demo --dest=data/demo.zip --resolution=32
    """
    try:
        summary = convert_dataset(progress=True, **kwargs)
    except (OSError, ValueError) as err:
        raise click.ClickException(str(err))
    print(format_summary(summary))

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter
