"""TensorBoard events of a training run (`tensorboard --logdir runs`), as NVIDIA's StyleGAN3 loop writes them.

Every statistic of stats.jsonl and every metric result (as Metrics/<name>) is a scalar whose step is the whole kimg
of the tick, upstream's convention, so runs of either codebase line up; previews are images at their snapshot.
"""

import numpy as np

#----------------------------------------------------------------------------

class EventsWriter:
    """Rank 0's events file in the run directory (events.out.tfevents.*); with TensorBoard missing, it says so once
    and writes nothing."""

    def __init__(self, run_dir, purge_nimg=None):
        """purge_nimg: a resumed run's starting point; TensorBoard hides the events after it that the interrupted run wrote."""
        try:
            from torch.utils.tensorboard import SummaryWriter # Imported here: the package is needed by rank 0 only.
        except ImportError as err:
            print(f'TensorBoard events skipped ({err}); `pip install tensorboard` adds them.')
            self.writer = None
            return
        self.writer = SummaryWriter(run_dir, purge_step=None if purge_nimg is None else kimg_step(purge_nimg) + 1)

    def add_stats(self, stats, cur_nimg):
        """The tick's training_stats (Collector.as_dict(): name -> EasyDict(num, mean, std)): the means of those reported
        in the tick (a name seen earlier in the process stays in the dict, empty)."""
        for name, value in stats.items():
            if value.num > 0:
                self.add_scalar(name, value.mean, cur_nimg)
        self.flush()

    def add_metrics(self, results, cur_nimg):
        """{metric: {result name: value}} of a snapshot (training_loop_ext.evaluate_metrics)."""
        for values in results.values():
            for name, value in values.items():
                self.add_scalar(f'Metrics/{name}', value, cur_nimg)
        self.flush()

    def add_scalar(self, name, value, cur_nimg):
        if self.writer is not None:
            self.writer.add_scalar(name, value, global_step=kimg_step(cur_nimg))

    def add_image(self, name, image, cur_nimg):
        """image: uint8 [H, W, C], C = 1 or 3."""
        if self.writer is not None:
            image = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
            self.writer.add_image(name, image, global_step=kimg_step(cur_nimg), dataformats='HWC')
            self.flush()

    def flush(self):
        if self.writer is not None:
            self.writer.flush()

    def close(self):
        if self.writer is not None:
            self.writer.close()

def kimg_step(cur_nimg):
    """Upstream's step: whole thousands of frames (ticks under 1 kimg share a step)."""
    return int(cur_nimg / 1e3)

#----------------------------------------------------------------------------
