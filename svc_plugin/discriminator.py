"""Video discriminator of StyleSV (Towards Smooth Video Composition, ICLR 2023): the StyleGAN2
residual discriminator on every frame, a temporal shift module (TSM) in the blocks above the fusion
resolution, fusion of the clip's frames, and a projection head conditioned on the time gaps (StyleGAN-V).

The source of this module travels inside network pickles, so it imports and calls only names that
NVIDIA's stylegan3 release also has.
"""

import numpy as np
import torch
from torch_utils import misc
from torch_utils import persistence
from torch_utils.ops import bias_act
from training import networks_stylegan2

#----------------------------------------------------------------------------

def temporal_shift(x, num_frames, fold_div=8):
    """Bidirectional temporal shift (Lin et al., TSM, 2019) of a batch of clips laid out video-major.

    x: [batch * frames, C, H, W]. Channels [0, C/fold_div) take the next frame's values,
    [C/fold_div, 2C/fold_div) the previous frame's, zeros enter at the clip ends, the rest is unchanged.
    """
    return _TemporalShift.apply(x, num_frames, x.shape[1] // fold_div, False)

class _TemporalShift(torch.autograd.Function):
    """The shift as one copy, with its adjoint (the same shift, directions swapped) as the backward
    pass: one copy each way instead of autograd's zero-filled buffers per slice, and differentiable
    again, as R1 needs the gradient of a gradient."""

    @staticmethod
    def forward(ctx, x, num_frames, fold, swapped):
        ctx.shift_args = (num_frames, fold, swapped)
        return _shifted_copy(x, num_frames, fold, swapped)

    @staticmethod
    def backward(ctx, dy):
        num_frames, fold, swapped = ctx.shift_args
        return _TemporalShift.apply(dy, num_frames, fold, not swapped), None, None, None

def _shifted_copy(x, num_frames, fold, swapped):
    """Channels [0, fold) from the next frame and [fold, 2 fold) from the previous one (the other
    way round if swapped), zeros at the clip ends; no loop over frames."""
    N, C, H, W = x.shape
    x = x.reshape(N // num_frames, num_frames, C, H, W) # [batch, frames, C, H, W]
    from_next, from_prev = (slice(0, fold), slice(fold, 2 * fold))[::-1 if swapped else 1]
    y = torch.empty_like(x)
    y[:, :-1, from_next] = x[:, 1:, from_next]
    y[:, -1, from_next] = 0
    y[:, 1:, from_prev] = x[:, :-1, from_prev]
    y[:, 0, from_prev] = 0
    y[:, :, 2 * fold:] = x[:, :, 2 * fold:]
    return y.reshape(N, C, H, W)

#----------------------------------------------------------------------------

@persistence.persistent_class
class TemporalShiftConv2dLayer(networks_stylegan2.Conv2dLayer):
    """Conv2dLayer that shifts its input in time first: the residual branch's conv0 of a TSM block.

    Replacing a block's conv0 by this layer puts TSM on the residual branch (the skip path reads the
    unshifted block input) while the block keeps its upstream forward and its parameter names.
    """

    def __init__(self,
        *conv_args,                 # Arguments of the upstream Conv2dLayer.
        num_frames,                 # Frames per clip; rows of the input are laid out video-major.
        fold_div        = 8,        # 1/fold_div of the channels move forward in time, as many backward.
        **conv_kwargs,              # Keyword arguments of the upstream Conv2dLayer.
    ):
        super().__init__(*conv_args, **conv_kwargs)
        self.num_frames = num_frames
        self.fold_div = fold_div

    def forward(self, x, gain=1):
        return super().forward(temporal_shift(x, self.num_frames, self.fold_div), gain=gain)

    def extra_repr(self):
        return super().extra_repr() + f', num_frames={self.num_frames:d}, fold_div={self.fold_div:d}'

#----------------------------------------------------------------------------

@persistence.persistent_class
class TimeGapEncoder(torch.nn.Module):
    """Features of the time gaps t[i+1] - t[i] of a clip (StyleGAN-V's temporal-difference encoder).

    Each gap gets sin/cos features at the periods of StyleGAN-V's `construct_log_spaced_freqs`,
    2^(num_freqs+1), ..., 8, 4 frames (angular frequencies pi 2^i / 2^num_freqs, i = 0 .. num_freqs-1, in
    that order; num_freqs = 10 is the reference's for clips from videos of up to 1024 frames) and, optionally, a learned
    embedding, read at fractional gaps by linear interpolation between the rows of the neighbouring
    integers (so generated clips at real-valued times get a smooth code).
    """

    def __init__(self,
        num_frames,                 # Frames per clip (> 1): num_frames - 1 gaps.
        num_freqs       = 10,       # Fourier periods 2^(num_freqs+1) ... 4 frames.
        embed_dim       = 256,      # Width of the learned embedding of each gap, 0 = none.
        max_gap         = 1024,     # Rows of the learned embedding; longer gaps read the last row.
    ):
        super().__init__()
        self.num_frames = num_frames
        self.num_freqs = num_freqs
        self.embed_dim = embed_dim
        self.max_gap = max_gap
        self.out_dim = (num_frames - 1) * (2 * num_freqs + embed_dim)
        freqs = np.pi * 2.0 ** np.arange(num_freqs) / 2.0 ** num_freqs
        self.register_buffer('freqs', torch.as_tensor(freqs, dtype=torch.float32)) # [num_freqs] rad/frame
        if embed_dim > 0:
            self.embed = torch.nn.Parameter(torch.randn([max_gap + 1, embed_dim]))

    def forward(self, t):
        misc.assert_shape(t, [None, self.num_frames])
        gaps = (t[:, 1:] - t[:, :-1]).to(torch.float32) # [batch, frames - 1]
        angles = gaps.unsqueeze(2) * self.freqs # [batch, frames - 1, num_freqs]
        features = [angles.sin(), angles.cos()]
        if self.embed_dim > 0:
            g = gaps.clamp(0, self.max_gap)
            lo = g.floor().clamp(max=self.max_gap - 1)
            rows = self.embed[lo.long()].lerp(self.embed[lo.long() + 1], (g - lo).unsqueeze(2)) # [batch, frames - 1, embed_dim]
            features.append(rows)
        return torch.cat(features, dim=2).flatten(1) # [batch, out_dim]

    def extra_repr(self):
        return f'num_frames={self.num_frames:d}, num_freqs={self.num_freqs:d}, embed_dim={self.embed_dim:d}, max_gap={self.max_gap:d}'

#----------------------------------------------------------------------------

def trains_every_layer(block):
    """False for a DiscriminatorBlock that freeze_layers reaches (Freeze-D), even with its fromrgb alone frozen."""
    return all(layer.init_kwargs.get('trainable', True) for layer in block.children() if isinstance(layer, networks_stylegan2.Conv2dLayer))

#----------------------------------------------------------------------------

@persistence.persistent_class
class VideoDiscriminator(networks_stylegan2.Discriminator):
    """StyleGAN2 residual discriminator for clips: D(img, c, t) -> logits [batch, 1].

    img [batch * frames, C, H, W] (video-major rows), c [batch, c_dim] (one label per clip),
    t [batch, frames] frame times. Blocks above fuse_res see single frames, with TSM on their residual
    branch unless freeze_layers freezes any of their layers (a frozen block keeps its image features); the block at fuse_res and below see one feature map per clip:
    - fuse='mean' (StyleSV): the frames' features are averaged; every block keeps its upstream channels.
    - fuse='concat' (StyleGAN-V): the frames' features are stacked along channels, so the block at
      fuse_res takes frames * C input channels (in = tmp = frames * C, out = C at fuse_res/2 as upstream).
    The projection head conditions on [c, time-gap features] through the upstream mapping network.
    With num_frames=1 (image pre-training) there is no shift, no fusion and no time conditioning.
    """

    def __init__(self,
        c_dim,                          # Width of the label c, 0 = unconditional.
        img_resolution,                 # Frame size in pixels.
        img_channels,                   # Frame channels.
        num_frames          = 3,        # Frames per clip.
        tsm                 = True,     # Temporal shift in the blocks above fuse_res?
        tsm_fold_div        = 8,        # TSM moves 1/fold_div of the channels each way.
        fuse                = 'mean',   # Frame fusion: 'mean' (StyleSV) or 'concat' (StyleGAN-V) of the frames' features.
        fuse_res            = 16,       # Resolution at whose block input the frames are fused (4 <= fuse_res < img_resolution).
        time_cond           = True,     # Condition on the time gaps between the frames (needs num_frames > 1)?
        time_freqs          = 10,       # Fourier features per gap (periods 2^(time_freqs+1) ... 4 frames).
        time_embed_dim      = 256,      # Learned embedding per gap, 0 = Fourier features only.
        time_max_gap        = 1024,     # Largest gap with its own embedding row.
        architecture        = 'resnet', # 'resnet' or 'orig' ('skip' would need the image stream fused too).
        conv_clamp          = 256,      # Clamp conv results to +-X, None = no clamping.
        block_kwargs        = {},       # Passed on to every DiscriminatorBlock.
        mapping_kwargs      = {},       # Passed on to the projection mapping (depth 2 unless num_layers is given).
        **upstream_kwargs,              # channel_base, channel_max, num_fp16_res, cmap_dim, epilogue_kwargs.
    ):
        if fuse not in ('mean', 'concat'):
            raise ValueError(f"fuse must be 'mean' or 'concat', not {fuse!r}")
        if architecture not in ('resnet', 'orig'):
            raise ValueError(f"architecture must be 'resnet' or 'orig', not {architecture!r}")
        if not 4 <= fuse_res < img_resolution or fuse_res & (fuse_res - 1) or (fuse == 'concat' and fuse_res == 4):
            raise ValueError(f'fuse_res must be a power of two in [4, {img_resolution}) ([8, ...) for concat), not {fuse_res}')
        time_encoder = TimeGapEncoder(num_frames, time_freqs, time_embed_dim, time_max_gap) if time_cond and num_frames > 1 else None
        cond_dim = c_dim + (time_encoder.out_dim if time_encoder is not None else 0)

        # The upstream discriminator conditions its projection head on a vector through its mapping
        # network; here that vector is [c, time-gap features], so it is built with their total width.
        mapping_kwargs = dict(dict(num_layers=2), **mapping_kwargs)
        super().__init__(cond_dim, img_resolution, img_channels, architecture=architecture, conv_clamp=conv_clamp,
            block_kwargs=block_kwargs, mapping_kwargs=mapping_kwargs, **upstream_kwargs)
        self.c_dim = c_dim
        self.cond_dim = cond_dim
        self.num_frames = num_frames
        self.tsm = tsm
        self.frame_fusion = fuse # The argument keeps its name `fuse`: snapshots record it among the constructor's.
        self.fuse_res = fuse_res
        self.time_encoder = time_encoder

        for res in self.block_resolutions:
            block = getattr(self, f'b{res}')
            if res > fuse_res and tsm and num_frames > 1 and trains_every_layer(block): # As the reference: no shift in a block that freeze_layers touches.
                block.conv0 = TemporalShiftConv2dLayer(*block.conv0.init_args, num_frames=num_frames,
                    fold_div=tsm_fold_div, **block.conv0.init_kwargs)
            if res == fuse_res and fuse == 'concat' and num_frames > 1:
                channels = block.conv1.in_channels * num_frames
                fused = networks_stylegan2.DiscriminatorBlock(channels, channels, block.conv1.out_channels,
                    resolution=res, img_channels=img_channels, first_layer_idx=block.first_layer_idx,
                    architecture=architecture, conv_clamp=conv_clamp, use_fp16=block.use_fp16, **block_kwargs)
                setattr(self, f'b{res}', fused)

    def fuse_frames(self, x):
        """[batch * frames, C, H, W] -> [batch, C, H, W] (mean) or [batch, frames * C, H, W] (concat)."""
        clips = x.reshape(-1, self.num_frames, *x.shape[1:]) # [batch, frames, C, H, W]
        return clips.mean(dim=1) if self.frame_fusion == 'mean' else clips.flatten(1, 2)

    def forward(self, img, c, t=None, update_emas=False, **block_kwargs):
        _ = update_emas # unused: the discriminator has no running statistics
        if img.shape[0] % self.num_frames != 0:
            raise ValueError(f'{img.shape[0]} frames do not make clips of {self.num_frames} frames')
        if t is not None:
            misc.assert_shape(t, [img.shape[0] // self.num_frames, self.num_frames])
        if self.time_encoder is not None and t is None:
            raise ValueError('this discriminator is conditioned on frame times: call D(img, c, t)')

        x = None
        for res in self.block_resolutions:
            if res == self.fuse_res:
                x = self.fuse_frames(x)
            x, img = getattr(self, f'b{res}')(x, img, **block_kwargs)
        if self.fuse_res == 4:
            x = self.fuse_frames(x)

        cmap = None
        if self.cond_dim > 0:
            cond = [c] if self.c_dim > 0 else []
            if self.time_encoder is not None:
                cond.append(self.time_encoder(t))
            cmap = self.mapping(None, torch.cat(cond, dim=1))
        return self.b4(x, img, cmap)

    def extra_repr(self):
        return (f'c_dim={self.c_dim:d}, img_resolution={self.img_resolution:d}, num_frames={self.num_frames:d}, '
            f'tsm={self.tsm}, fuse={self.frame_fusion}, fuse_res={self.fuse_res:d}')

    @classmethod
    def from_image_discriminator(cls, D_image, **video_kwargs):
        """A video discriminator with every weight of an upstream image Discriminator that fits.

        Everything whose name and shape match is copied, and the 1-output head is broadcast into the
        projection head: at the start the video D's score does not depend on the frame times, and it
        equals the image D's score of a frame when the fused features are that frame's (one frame per
        clip; or clips of identical frames without TSM, since TSM zeroes channels of the end frames'
        residual branches). A block rebuilt for concat fusion starts from its random initialisation.
        """
        if len(D_image.init_args) > 3:
            raise ValueError('from_image_discriminator: the image D was built with options passed by position')
        kwargs = dict(D_image.init_kwargs, c_dim=D_image.c_dim, img_resolution=D_image.img_resolution, img_channels=D_image.img_channels)
        if D_image.c_dim > 0: # keep the label mapping's shape, so that it can be copied
            kwargs['mapping_kwargs'] = dict(kwargs.get('mapping_kwargs', {}), num_layers=D_image.mapping.num_layers)
            kwargs['cmap_dim'] = D_image.b4.cmap_dim
        kwargs.update(video_kwargs)
        D = cls(**kwargs).to(next(iter(misc.params_and_buffers(D_image))).device)
        with torch.no_grad():
            src = dict(misc.named_params_and_buffers(D_image))
            for name, dst in misc.named_params_and_buffers(D):
                if name in src and src[name].shape == dst.shape:
                    dst.copy_(src[name].detach())
            if D.time_encoder is not None:
                D._start_time_conditioning_as_image_head(D_image)
        return D

    def _start_time_conditioning_as_image_head(self, D_image):
        """Make the time-conditioned projection head score as D_image's head, for every t.

        Labelled image D: its label mapping is copied; the mapping's first layer, now reading [c, time
        features], gets zero weights on the time features (and the copied label weights rescaled by
        sqrt(new fan-in / old fan-in) to undo the equalized-lr gain), so cmap is the image D's cmap.

        Unlabelled image D, head out(h) = w.h + b, w [1, C]: the video head is
        <W'h + b', cmap> / sqrt(M), W' [M, C]. With the mapping's last layer at zero weights and a bias
        that makes every entry of cmap 1/sqrt(M) (t-independent), this is mean_m(W'_m.h + b'_m). Setting
        W'_m = w + P_m with sum_m P_m = 0 (P: the fresh random rows, centred) and b'_m = b gives exactly
        w.h + b. The P_m differ, so the head's rows and the mapping's units receive different gradients
        and conditioning on t can be learnt (identical rows would stay identical forever).
        """
        cmap_dim = self.b4.cmap_dim
        if D_image.c_dim > 0:
            embed = self.mapping.embed
            old = D_image.mapping.embed.weight
            embed.weight.zero_()
            embed.weight[:, :self.c_dim] = old * np.sqrt(embed.in_features / old.shape[1])
            return
        last = getattr(self.mapping, f'fc{self.mapping.num_layers - 1}')
        gain = bias_act.activation_funcs[last.activation].def_gain # positive inputs pass as x * gain (lrelu, relu, linear)
        last.weight.zero_()
        last.bias.fill_(1 / (np.sqrt(cmap_dim) * gain * last.bias_gain))
        out, image_out = self.b4.out, D_image.b4.out
        out.weight.copy_(image_out.weight + out.weight - out.weight.mean(dim=0, keepdim=True))
        out.bias.copy_(image_out.bias.expand_as(out.bias))

#----------------------------------------------------------------------------
