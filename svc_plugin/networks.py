"""Video generator: StyleGAN3 synthesis driven by the motion embedding v(t) (Zhang et al., arXiv 2212.07413; StyleGAN-V, arXiv 2112.14683).

Frames are a batch dimension: a clip of F frames of video b occupies output rows b*F .. b*F+F-1
(video-major), all sharing the content latent w of video b. v(t), scaled by a learnable per-channel
motion mask, enters the Fourier-feature input as a per-channel offset and every layer's w through a
fusion layer (not ws[0], which drives the input's transform: motion does not rotate or translate the
whole frame, as in the reference code); optionally it also drives a low-rank temporal modulation of
every convolution.

Start exactly where pre-training ended: the mask starts at zero and the fusion starts as the identity
on w, so a video generator built from an image snapshot renders that snapshot's images at every t.
Everything that reads v after the mask starts random, not zero: with the mask at zero as well, the
mask's gradient (which flows through those weights) and theirs (which is scaled by the mask) would
both be zero and motion could never switch on.
"""

import numpy as np
import torch
from torch_utils import misc
from torch_utils import persistence
from torch_utils.ops import conv2d_gradfix
from torch_utils.ops import filtered_lrelu
from training import networks_stylegan3

# Positional parameters of networks_stylegan3.Generator, to read a generator's init_args.
_IMAGE_GENERATOR_ARGS = ['z_dim', 'c_dim', 'w_dim', 'img_resolution', 'img_channels', 'mapping_kwargs']

# Device types on which use_fp16 layers compute in float16; on others they run float32. Tests add 'cpu' to reach the fp16 path.
FP16_DEVICES = ('cuda',)

#----------------------------------------------------------------------------

@persistence.persistent_class
class VideoSynthesisLayer(networks_stylegan3.SynthesisLayer):
    """SynthesisLayer plus the low-rank temporal modulation of StyleSV (arXiv 2212.07413 v1; genforce/StyleSV `low_rank`).

    A second kernel W_lr = W1 W2 of rank R over channels (per tap: W1 [C_out, R, k, k], W2 [R, C_in, k, k]),
    RMS-normalised, modulated by its own style from v and demodulated on its own, is added to the
    content-modulated convolution's output: motion can change each convolution only in a rank-R subspace.

    Initialisation: W1 and W2 random, a per-output-channel gain zero. The branch is demodulated, so its
    output does not shrink with its factors: a zero factor would leave the normalisation singular (the
    gradient through it scales with 1/sqrt(eps)) and one step would switch the branch on at full strength.
    The zero gain makes it an exact no-op that receives a gradient at once and grows smoothly; the factors
    receive theirs from the first step on, once the gain is no longer zero. (The reference initialises
    both factors to zero, so its branch never learns.)
    """

    def __init__(self,
        *args,                          # SynthesisLayer arguments.
        motion_dim,                     # Width of the motion embedding v.
        low_rank,                       # R: rank of the temporal kernel over channels.
        **kwargs,                       # SynthesisLayer arguments.
    ):
        super().__init__(*args, **kwargs)
        self.motion_dim = motion_dim
        self.low_rank = low_rank
        k = self.conv_kernel
        self.temporal_affine = networks_stylegan3.FullyConnectedLayer(motion_dim, self.in_channels, bias_init=1)
        self.temporal_weight_out = torch.nn.Parameter(torch.randn([self.out_channels, low_rank, k, k])) # W1
        self.temporal_weight_in = torch.nn.Parameter(torch.randn([low_rank, self.in_channels, k, k])) # W2
        self.temporal_gain = torch.nn.Parameter(torch.zeros([self.out_channels]))

    def forward(self, x, w, v, noise_mode='random', force_fp32=False, update_emas=False):
        """As SynthesisLayer.forward, with v [batch, motion_dim] driving the temporal branch."""
        assert noise_mode in ['random', 'const', 'none'] # unused: the layer has no noise inputs
        misc.assert_shape(x, [None, self.in_channels, int(self.in_size[1]), int(self.in_size[0])])
        misc.assert_shape(w, [x.shape[0], self.w_dim])
        misc.assert_shape(v, [x.shape[0], self.motion_dim])

        if update_emas:
            magnitude_cur = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(magnitude_cur.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()

        styles = self.affine(w)
        if self.is_torgb:
            styles = styles * (1 / np.sqrt(self.in_channels * (self.conv_kernel ** 2)))

        dtype = torch.float16 if (self.use_fp16 and not force_fp32 and x.device.type in FP16_DEVICES) else torch.float32
        x = x.to(dtype)
        y = networks_stylegan3.modulated_conv2d(x=x, w=self.weight, s=styles,
            padding=self.conv_kernel-1, demodulate=(not self.is_torgb), input_gain=input_gain)
        y = y + self.temporal_conv(x, v, input_gain)

        gain = 1 if self.is_torgb else np.sqrt(2)
        slope = 1 if self.is_torgb else 0.2
        y = filtered_lrelu.filtered_lrelu(x=y, fu=self.up_filter, fd=self.down_filter, b=self.bias.to(y.dtype),
            up=self.up_factor, down=self.down_factor, padding=self.padding, gain=gain, slope=slope, clamp=self.conv_clamp)

        misc.assert_shape(y, [None, self.out_channels, int(self.out_size[1]), int(self.out_size[0])])
        assert y.dtype == dtype
        return y

    def temporal_factors(self):
        """W1, W2 scaled to unit RMS: the demodulated branch does not depend on their scale, and this keeps
        the executed convolutions in float16 range however the factors grow."""
        w_out, w_in = self.temporal_weight_out, self.temporal_weight_in
        return w_out * w_out.square().mean().rsqrt(), w_in * w_in.square().mean().rsqrt()

    def temporal_kernel(self):
        """The rank-R kernel W_lr = W1 W2, tap by tap: [C_out, C_in, k, k]."""
        return torch.einsum('orhw,rihw->oihw', *self.temporal_factors())

    def temporal_conv(self, x, v, input_gain):
        """Temporal branch: gain * demodulate(RMS-normalised W_lr modulated by affine(v)), applied to x.

        Executed in factored form, never as a full C_out x C_in convolution: a 1x1 convolution projects x
        onto R channels per tap, a depthwise convolution with one-hot kernels moves each projection to its
        tap, and a 1x1 convolution maps the R*k*k channels to C_out. Cost ~ R*k*k*(C_in + C_out) per pixel,
        against C_out*C_in*k*k for the content convolution: 1.6% at R=4, C=512.
        """
        batch_size = x.shape[0]
        rank, k = self.low_rank, self.conv_kernel
        taps = k * k

        # Modulation and demodulation coefficients, as modulated_conv2d computes them for W_lr.
        styles = self.temporal_affine(v) # [batch, C_in]
        styles = styles * styles.square().mean().rsqrt()
        kernel = self.temporal_kernel() # [C_out, C_in, k, k]
        rms_gains = kernel.square().mean(dim=[1, 2, 3]).rsqrt() # [C_out]
        dcoefs = (styles.square() @ kernel.square().sum(dim=[2, 3]).t() * rms_gains.square() + 1e-8).rsqrt() # [batch, C_out]
        styles = styles * input_gain.expand(batch_size, self.in_channels)
        out_gains = dcoefs * rms_gains * self.temporal_gain # [batch, C_out]

        # Factored convolution; channel r*taps + q of the projections belongs to rank r, tap q.
        w_out, w_in = self.temporal_factors()
        w_in = w_in.reshape(rank, self.in_channels, taps).permute(0, 2, 1).reshape(rank * taps, self.in_channels, 1, 1)
        w_out = w_out.reshape(self.out_channels, rank * taps, 1, 1)
        one_tap = torch.eye(taps, device=x.device, dtype=x.dtype).reshape(taps, 1, k, k).repeat(rank, 1, 1, 1) # [R*taps, 1, k, k]
        y = x * styles.to(x.dtype).reshape(batch_size, -1, 1, 1)
        y = conv2d_gradfix.conv2d(input=y, weight=w_in.to(x.dtype)) # [batch, R*taps, H, W]
        y = conv2d_gradfix.conv2d(input=y, weight=one_tap, padding=k-1, groups=rank*taps) # [batch, R*taps, H+k-1, W+k-1]
        y = conv2d_gradfix.conv2d(input=y, weight=w_out.to(x.dtype)) # [batch, C_out, H+k-1, W+k-1]
        return y * out_gains.to(x.dtype).reshape(batch_size, -1, 1, 1)

    def extra_repr(self):
        return super().extra_repr() + f',\nmotion_dim={self.motion_dim:d}, low_rank={self.low_rank:d}'

#----------------------------------------------------------------------------

@persistence.persistent_class
class VideoSynthesisNetwork(networks_stylegan3.SynthesisNetwork):
    """SynthesisNetwork whose frames move: ws [B, num_ws, w_dim] and times t [B, F] -> frames [B*F, C, H, W]."""

    def __init__(self,
        w_dim,                          # Width of the intermediate latent w.
        img_resolution,                 # Output image size in pixels.
        img_channels,                   # Output image channels.
        c_dim           = 0,            # Label width; a label conditions the motion codes.
        motion_kwargs   = {},           # Passed on to MotionEncoder (z_dim, v_dim, motion_z_distance, kind, ...).
        fuse_w          = 'concat',     # How v enters each layer's w: 'concat' = FC([w; v]), 'add' = w + FC(v).
        low_rank        = 0,            # Rank of the temporal modulation of every layer, 0 = off.
        **synthesis_kwargs,             # Passed on to SynthesisNetwork (channel_base, ..., layer kwargs).
    ):
        from svc_plugin.motion import MotionEncoder # Here, not at the top: loading a pickle then needs only the upstream layer.
        super().__init__(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, **synthesis_kwargs)
        if fuse_w not in ['concat', 'add']:
            raise ValueError(f"fuse_w must be 'concat' or 'add', got {fuse_w!r}")
        self.c_dim = c_dim
        self.style_fusion = fuse_w # How v enters the styles; the argument keeps its recorded name `fuse_w`.
        self.low_rank = low_rank
        self.motion_encoder = MotionEncoder(c_dim=c_dim, **motion_kwargs)
        v_dim = self.motion_encoder.v_dim
        self.motion_mask = torch.nn.Parameter(torch.zeros([v_dim]))

        # v -> per-channel offset of the Fourier features, and v -> every layer's w (identity on w at start).
        # The style fusion layer is `fuse`: its parameters are named synthesis.fuse.* in snapshots.
        self.input_motion = networks_stylegan3.FullyConnectedLayer(v_dim, self.input.channels)
        if fuse_w == 'concat':
            self.fuse = networks_stylegan3.FullyConnectedLayer(w_dim + v_dim, w_dim)
            with torch.no_grad():
                self.fuse.weight[:, :w_dim] = torch.eye(w_dim) / self.fuse.weight_gain
        else:
            self.fuse = networks_stylegan3.FullyConnectedLayer(v_dim, w_dim)

        # Low-rank temporal modulation: the same layers, each with its temporal branch.
        if low_rank > 0:
            for name in self.layer_names:
                layer = getattr(self, name)
                setattr(self, name, VideoSynthesisLayer(*layer.init_args, **layer.init_kwargs, motion_dim=v_dim, low_rank=low_rank))

    def forward(self, ws, c=None, t=None, motion_z=None, motion_seeds=None, motion_period=None, **layer_kwargs):
        """Frames [B*F, C, H, W], row b*F + f = video b at time t[b, f]; t=None means t = 0 (one frame)."""
        misc.assert_shape(ws, [None, self.num_ws, self.w_dim])
        if t is None:
            t = torch.zeros([ws.shape[0], 1], device=ws.device)
        misc.assert_shape(t, [ws.shape[0], None])
        motion = self.motion_encoder(c, t, motion_z=motion_z, motion_seeds=motion_seeds, motion_period=motion_period)
        v = motion['motion_v'] * self.motion_mask # [B*F, v_dim]

        ws = ws.to(torch.float32).repeat_interleave(t.shape[1], dim=0) # [B*F, num_ws, w_dim], video-major
        x = self.input(ws[:, 0]) + self.input_motion(v).unsqueeze(2).unsqueeze(3) # [B*F, C, H, W]
        for name, w in zip(self.layer_names, self.fuse_motion(ws[:, 1:], v).unbind(dim=1)):
            if self.low_rank > 0:
                x = getattr(self, name)(x, w, v, **layer_kwargs)
            else:
                x = getattr(self, name)(x, w, **layer_kwargs)
        if self.output_scale != 1:
            x = x * self.output_scale

        misc.assert_shape(x, [None, self.img_channels, self.img_resolution, self.img_resolution])
        return x.to(torch.float32)

    def fuse_motion(self, ws, v):
        """The layers' ws with v fused in by the style fusion layer: ws [N, L, w_dim], v [N, v_dim] -> [N, L, w_dim]."""
        if self.style_fusion == 'add':
            return ws + self.fuse(v).unsqueeze(1)
        wv = torch.cat([ws, v.unsqueeze(1).expand(-1, ws.shape[1], -1)], dim=2) # [N, L, w_dim + v_dim]
        return self.fuse(wv.flatten(0, 1)).reshape(ws.shape)

    def extra_repr(self):
        return super().extra_repr() + f',\nc_dim={self.c_dim:d}, fuse_w={self.style_fusion}, low_rank={self.low_rank:d}'

#----------------------------------------------------------------------------

@persistence.persistent_class
class VideoGenerator(networks_stylegan3.Generator):
    """Mapping network (content, one w per video) + video synthesis network (motion, one v per frame)."""

    def __init__(self,
        z_dim,                      # Width of the content latent z.
        c_dim,                      # Width of the label c, 0 = unconditional.
        w_dim,                      # Width of the intermediate latent w.
        img_resolution,             # Output frame size in pixels.
        img_channels,               # Output frame channels.
        mapping_kwargs      = {},   # Passed on to MappingNetwork.
        motion_kwargs       = {},   # Passed on to MotionEncoder.
        fuse_w              = 'concat', # How v enters each layer's w: 'concat' or 'add'.
        low_rank            = 0,    # Rank of the temporal modulation, 0 = off.
        **synthesis_kwargs,         # Passed on to SynthesisNetwork.
    ):
        torch.nn.Module.__init__(self) # Not Generator.__init__: it would build an image synthesis network first.
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        # Synthesis first, as upstream: parameter order is part of the pickle/EMA contract.
        self.synthesis = VideoSynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
            c_dim=c_dim, motion_kwargs=motion_kwargs, fuse_w=fuse_w, low_rank=low_rank, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = networks_stylegan3.MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs)
        self.motion_z_distance = self.synthesis.motion_encoder.motion_z_distance # Frames between key codes.

    def forward(self, z, c, t=None, truncation_psi=1, truncation_cutoff=None, motion_z=None, update_emas=False, **synthesis_kwargs):
        """Frames [B*F, C, H, W] of B videos at times t [B, F]; synthesis_kwargs may hold motion_seeds,
        motion_period, noise_mode, force_fp32. t=None renders frame 0, so G(z, c) works like an image G."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, update_emas=update_emas)
        return self.synthesis(ws, c=c, t=t, motion_z=motion_z, update_emas=update_emas, **synthesis_kwargs)

    @classmethod
    def from_image_generator(cls, G_image, **video_kwargs):
        """A video generator with G_image's configuration and every one of its weights and buffers.

        G_image: a networks_stylegan3.Generator, ours or one unpickled from NVIDIA's release (its
        constructor arguments come from init_args/init_kwargs). video_kwargs: motion_kwargs, fuse_w,
        low_rank, or overrides of G_image's options. At the start, the result renders G_image's images
        for every t. Same device, training mode and requires_grad as G_image.
        """
        kwargs = dict(zip(_IMAGE_GENERATOR_ARGS, G_image.init_args), **G_image.init_kwargs)
        kwargs.update(video_kwargs)
        G = cls(**kwargs)
        video_names = {name for name, _ in misc.named_params_and_buffers(G)}
        missing = [name for name, _ in misc.named_params_and_buffers(G_image) if name not in video_names]
        if missing:
            raise ValueError(f'{type(G_image).__name__} is not a StyleGAN3 image generator: the video generator '
                f'has no place for {", ".join(missing[:3])}')
        with torch.no_grad(): # NVIDIA's copy is in-place on tensors that may require grad.
            misc.copy_params_and_buffers(G_image, G, require_all=False)
        params = list(G_image.parameters())
        device = params[0].device if params else torch.device('cpu')
        return G.to(device).train(G_image.training).requires_grad_(any(p.requires_grad for p in params))

#----------------------------------------------------------------------------
