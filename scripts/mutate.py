"""Mutation testing of chosen modules with mutmut: how many small planted bugs their own tests catch.

mutmut (https://github.com/boxed/mutmut, 3.x) changes one operator, constant or call at a time inside a module's
functions and runs the tests that reach the changed function; a mutant that no test fails on "survived", and is
either a missing test or an equivalent change (explain it). Each module runs with its own test files only, in a
scratch copy of the working tree under .mutate/<module>/ (kept for inspection; each run starts afresh):

    pip install mutmut==3.8.1
    nice python scripts/mutate.py svc_plugin/fileio.py svc_plugin/checkpoint.py --jobs=2
    nice python scripts/mutate.py svc_plugin/motion.py --functions blend_weights bspline_embedding

prints one line per module (killed / mutants, survivors, not reached by the tests) and lists the survivors;
`cd .mutate/<module> && mutmut show <mutant>` shows one as a diff.
"""

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRATCH = os.path.join(ROOT, '.mutate')

# The tests of each module whose name does not lead to them (default: tests/test_<module name>.py), as pytest arguments.
# Slow end-to-end tests are left out where they would rerun for every mutant of a function they reach.
MODULE_TESTS = {
    'svc_plugin/distributed.py':    ['tests/test_distributed.py', '-k', 'step_as_one_process or gradients_are_made_finite'], # The rest are upstream's.
    'svc_plugin/metrics/fvd.py':    ['tests/test_fvd.py', '-k', 'not register_on_demand'], # mutmut runs pytest twice in one process:
                                                                              # the metric registry keeps the first run's names.
    'svc_plugin/networks.py':       ['tests/test_networks_video.py'],
    'svc_plugin/dataset.py':        ['tests/test_dataset_video.py'],
    'svc_plugin/loss.py':           ['tests/test_video_loss.py'],
    'gen_video.py':                 ['tests/test_gen_video.py', '-k', 'not a_training_run_s_previews'],
}

# mutmut's exit code of a mutant's test run -> what it means.
OUTCOMES = {1: 'killed', 0: 'survived', 33: 'no tests', 34: 'skipped', 35: 'suspicious', 36: 'timeout', 37: 'type error',
    -24: 'timeout', -11: 'segfault'} # -24: SIGXCPU, stopped at its CPU-time limit.

#----------------------------------------------------------------------------

def tests_of(module):
    name = os.path.splitext(os.path.basename(module))[0]
    return MODULE_TESTS.get(module, [f'tests/test_{name}.py'])

def tracked_files():
    """The files of the working tree as git sees them (committed or not, ignored ones left out)."""
    out = subprocess.run(['git', 'ls-files', '--cached', '--others', '--exclude-standard', '-z'], cwd=ROOT,
        capture_output=True, check=True).stdout
    return [path for path in out.decode().split('\0') if path and os.path.isfile(os.path.join(ROOT, path))]

def sync_scratch(scratch):
    """Copy the working tree into `scratch`, leaving files that did not change alone."""
    for path in tracked_files():
        src, dst = os.path.join(ROOT, path), os.path.join(scratch, path)
        if os.path.isfile(dst) and open(src, 'rb').read() == open(dst, 'rb').read():
            continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst)

def mutmut_config(module, tests):
    """The [tool.mutmut] section: mutate `module` only, run `tests` only, copy everything else alongside."""
    top_level = sorted({path.split('/')[0] for path in tracked_files()} - {module.split('/')[0]})
    return '\n'.join([
        '', '[tool.mutmut]',
        f'source_paths = {json.dumps([module.split("/")[0]])}',
        f'only_mutate = {json.dumps([module])}',
        f'also_copy = {json.dumps(top_level)}',
        f'pytest_add_cli_args_test_selection = {json.dumps(tests)}',
        'pytest_add_cli_args = ["-p", "no:cacheprovider"]',
        'timeout_multiplier = 4.0', '', # A mutant taking 4x the tests' CPU time hangs (mutmut's default waits 15x).
    ])

def mutate(module, tests, jobs, functions=None):
    """Run mutmut on one module (on the mutants of `functions` only, if given); return {outcome: [mutant names]}."""
    scratch = os.path.join(SCRATCH, module.replace('/', '_'))
    os.makedirs(scratch, exist_ok=True)
    sync_scratch(scratch)
    shutil.rmtree(os.path.join(scratch, 'mutants'), ignore_errors=True) # mutmut keeps results when only the tests changed.
    with open(os.path.join(ROOT, 'pyproject.toml')) as f:
        config = f.read() + mutmut_config(module, tests)
    with open(os.path.join(scratch, 'pyproject.toml'), 'w') as f:
        f.write(config)
    dotted = os.path.splitext(module)[0].replace('/', '.')
    patterns = [f'{dotted}.x*{function}__mutmut_*' for function in functions or []] # x_f, or xǁClassǁf for a method.
    env = dict(os.environ, OMP_NUM_THREADS='1') # mutmut's time limit is CPU time: one thread per test run keeps it to the tests' pace.
    run = subprocess.run([sys.executable, '-m', 'mutmut', 'run', f'--max-children={jobs}', *patterns], cwd=scratch, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if run.returncode != 0:
        return {f'mutmut failed: {run.stderr.strip().splitlines()[-1] if run.stderr.strip() else run.returncode}': []}
    with open(os.path.join(scratch, 'mutants', module + '.meta')) as f:
        exit_codes = json.load(f)['exit_code_by_key']
    results = {}
    for name, code in sorted(exit_codes.items(), key=lambda item: mutant_order(item[0])):
        if functions and not any(mutant_order(name)[0].endswith(function) for function in functions):
            continue
        results.setdefault(OUTCOMES.get(code, f'exit code {code}'), []).append(name)
    return results

def mutant_order(name):
    """'svc_plugin.fileio.x_discard__mutmut_12' -> ('x_discard', 12): mutants of a function in the order mutmut made them."""
    function, _, number = name.split('.')[-1].rpartition('__mutmut_')
    return function, int(number)

#----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('modules', nargs='+', help='module files, e.g. svc_plugin/fileio.py gen_video.py')
    parser.add_argument('--tests', nargs='+', help='test files (default: the module\'s own)')
    parser.add_argument('--functions', nargs='+', help='mutate only these functions or methods of the module (default: all)')
    parser.add_argument('--jobs', type=int, default=2, help='mutants tested at once')
    args = parser.parse_args()
    for module in args.modules:
        if not os.path.isfile(os.path.join(ROOT, module)):
            sys.exit(f'error: no module file {module}')
    if importlib.util.find_spec('mutmut') is None:
        sys.exit('error: mutmut is not installed; pip install mutmut==3.8.1')
    for module in args.modules:
        tests = args.tests or tests_of(module)
        results = mutate(module, tests, args.jobs, args.functions)
        failure = next((outcome for outcome in results if outcome.startswith('mutmut failed')), None)
        if failure:
            sys.exit(f'error: {module}: {failure}')
        total = sum(len(names) for names in results.values())
        killed = len(results.get('killed', [])) + len(results.get('timeout', []))
        print(f'{module}: {killed}/{total} killed ({100 * killed / max(total, 1):.0f}%), {len(results.get("survived", []))} survived, '
            f'{len(results.get("no tests", []))} not reached by {" ".join(tests)}', flush=True)
        for outcome, names in results.items():
            if outcome == 'no tests':
                print(f'  no tests reach: ' + ' '.join(sorted({mutant_order(name)[0] for name in names})))
            elif outcome not in ('killed', 'timeout'):
                print(f'  {outcome}: ' + ' '.join(name.split('.')[-1] for name in names))

if __name__ == '__main__':
    main()
