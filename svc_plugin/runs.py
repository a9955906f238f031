"""Run directories: every name in one, and the rules that pair and pick its files (--resume=latest, ...).

A run directory <outdir>/<NNNNN>-<description> holds training_options.json, log.txt, stats.jsonl, per snapshot
network-snapshot-<kimg>.pkl (the upstream format) with training-state-<kimg>.pt (everything else a resumed run
needs, paired with the pickle by its hash) and optionally network-snapshot-<kimg>.pt (weights only),
best-<metric>.pkl, the previews reals.* / fakes<kimg>.*, and metric-<name>.jsonl.
"""

import os
import pickle
import re
import shutil

import torch

from svc_plugin import fileio

RUNS_DIR        = 'runs'            # train_video.py's default --outdir: where --network=latest and --resume=latest look.
STATE_FORMAT    = 'stylesv-training-state-1'
SNAPSHOT_RE     = re.compile(r'network-snapshot-(\d+)\.pkl')
RESUME_HINT     = ' (files written before are intact; free some space, then continue with --resume=latest)'

#----------------------------------------------------------------------------
# Names.

def new_run_dir(outdir, desc):
    """<outdir>/<NNNNN>-<desc>, NNNNN one above the highest run number there."""
    names = os.listdir(outdir) if os.path.isdir(outdir) else []
    numbers = [int(m.group(1)) for name in names if (m := re.match(r'^(\d+)-', name))]
    return os.path.join(outdir, f'{max(numbers, default=-1) + 1:05d}-{desc}')

def run_dirs(outdir):
    """The run directories <NNNNN>-* of `outdir`, from the highest run number down."""
    if not os.path.isdir(outdir):
        return []
    runs = sorted((int(m.group(1)), name) for name in os.listdir(outdir) if (m := re.match(r'^(\d+)-', name)))
    return [os.path.join(outdir, name) for _run_id, name in reversed(runs) if os.path.isdir(os.path.join(outdir, name))]

def snapshot_pkl_path(run_dir, cur_nimg):
    return os.path.join(run_dir, f'network-snapshot-{cur_nimg // 1000:06d}.pkl')

def state_path_of(snapshot_pkl):
    """training-state-NNNNNN.pt beside network-snapshot-NNNNNN.pkl."""
    folder, name = os.path.split(snapshot_pkl)
    return os.path.join(folder, re.sub(r'^network-snapshot-(\d+)\.pkl$', r'training-state-\1.pt', name))

def weights_only_path(snapshot_pkl):
    """network-snapshot-NNNNNN.pt beside network-snapshot-NNNNNN.pkl."""
    return os.path.splitext(snapshot_pkl)[0] + '.pt'

def best_pkl_path(run_dir, metric):
    return os.path.abspath(os.path.join(run_dir, f'best-{metric}.pkl'))

#----------------------------------------------------------------------------
# Snapshots, their training states, and which of them to start from.

def replaces_previous_stage_snapshot(run_dir, cur_nimg, resume_pkl, stage_start_nimg):
    """Snapshots are named by whole kimg, so in the first kimg of a stage that started from a file of the same run
    directory (--stage=both: the image stage's last snapshot or its best-<metric>.pkl) and continues its kimg count,
    a snapshot would overwrite the previous stage's last one."""
    if resume_pkl is None or os.path.dirname(os.path.abspath(resume_pkl)) != os.path.abspath(run_dir):
        return False
    return snapshot_pkl_path(run_dir, cur_nimg) == snapshot_pkl_path(run_dir, stage_start_nimg)

def video_stage_start(last_pkl, best):
    """(snapshot, a line saying which) that the video stage of --stage=both starts from: the image stage's
    best-<metric>.pkl when it kept one (best: dict(metric, value, path, kimg)), as the authors fine-tune from their
    pre-training's best_fid.pkl (genforce/StyleSV scripts/ytb_finetune.sh), else its last snapshot."""
    if best is None or best.get('path') is None:
        return last_pkl, f"The video stage starts from the image stage's last snapshot, {os.path.basename(last_pkl)}."
    kimg = f"kimg {best['kimg']:.3f}, " if best.get('kimg') is not None else '' # States written before 'kimg' was recorded lack it.
    return best['path'], (f"The video stage starts from the image stage's best snapshot, {os.path.basename(best['path'])} "
        f"({kimg}{best['metric']} {best['value']:g}); its last snapshot is {os.path.basename(last_pkl)}.")

def write_snapshot(snapshot_pkl, snapshot_bytes, state):
    """The state and the pickle it describes (by hash), both written in full before either is renamed, the state first:
    a pickle under its final name always has its state, a kill while writing leaves the previous pair, and a kill between
    the two renames leaves the new pickle under its temporary name, which find_latest_snapshot renames into place."""
    fileio.replace_together([(state_path_of(snapshot_pkl), fileio.torch_writer(state)), (snapshot_pkl, fileio.bytes_writer(snapshot_bytes))],
        hint=RESUME_HINT)

def load_training_state(snapshot_pkl):
    """The training state saved with a snapshot, or None when there is none or it belongs to other snapshot bytes
    (a run killed between writing the state and the pickle that it describes)."""
    state_path = state_path_of(snapshot_pkl)
    if state_path == snapshot_pkl or not os.path.isfile(state_path) or not os.path.isfile(snapshot_pkl):
        return None
    try:
        state = torch.load(state_path, map_location='cpu', weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError): # Truncated or foreign: no state.
        return None
    if not isinstance(state, dict) or state.get('format') != STATE_FORMAT or state['snapshot_sha256'] != fileio.file_sha256(snapshot_pkl):
        return None
    return state

def finish_interrupted_snapshot(snapshot_pkl):
    """write_snapshot renames the state, then the pickle: a kill between the two leaves the new state beside the old
    pickle (or none), with the new pickle complete under its temporary name. Rename it into place as the killed run
    would have; a temporary that the state does not describe (cut short by a kill) is left alone."""
    try:
        expected = torch.load(state_path_of(snapshot_pkl), map_location='cpu', weights_only=True)['snapshot_sha256']
    except (OSError, RuntimeError, EOFError, ValueError, KeyError, TypeError, pickle.UnpicklingError): # No state, or not ours.
        return
    if os.path.isfile(snapshot_pkl) and fileio.file_sha256(snapshot_pkl) == expected: # Not interrupted.
        return
    for tmp_path in fileio.temporaries_of(snapshot_pkl):
        if fileio.file_sha256(tmp_path) == expected:
            os.replace(tmp_path, snapshot_pkl)
            return

def newest_snapshot(outdir, usable=os.path.isfile):
    """The newest network-snapshot-<kimg>.pkl that usable(path) accepts, searching the run directories <NNNNN>-* of
    `outdir` from the highest run number down and each from its highest kimg down; None if there is none."""
    for run_dir in run_dirs(outdir):
        pkls = sorted(f for f in os.listdir(run_dir) if SNAPSHOT_RE.fullmatch(f))
        for pkl in reversed(pkls):
            if usable(os.path.join(run_dir, pkl)):
                return os.path.join(run_dir, pkl)
    return None

def find_latest_snapshot(outdir):
    """The newest network-snapshot-*.pkl that has a matching training state, searching the run directories of
    `outdir` from the highest run number down (a run that died before its first snapshot is passed over), after
    finishing the snapshots that a kill interrupted between their two renames."""
    for run_dir in run_dirs(outdir):
        for name in os.listdir(run_dir):
            if SNAPSHOT_RE.fullmatch(fileio.final_path_of(name)) and name != fileio.final_path_of(name):
                finish_interrupted_snapshot(os.path.join(run_dir, fileio.final_path_of(name)))
    return newest_snapshot(outdir, usable=lambda path: load_training_state(path) is not None)

def keep_best_copy(best, run_dir):
    """A resumed run starts with a copy of the best snapshot so far (kept by the run it resumes) in its own directory."""
    path = best_pkl_path(run_dir, best['metric'])
    if best['path'] is not None and os.path.isfile(best['path']) and best['path'] != path:
        fileio.replace_atomically(path, lambda tmp_path: shutil.copyfile(best['path'], tmp_path), hint=RESUME_HINT)
        best['path'] = path

#----------------------------------------------------------------------------
