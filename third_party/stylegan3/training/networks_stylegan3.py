"""Generator of "Alias-Free Generative Adversarial Networks" (StyleGAN3, Karras et al. 2021)."""

import numpy as np
import scipy.signal
import scipy.special
import torch
from torch_utils import misc
from torch_utils import persistence
from torch_utils.ops import conv2d_gradfix
from torch_utils.ops import filtered_lrelu
from torch_utils.ops import bias_act

#----------------------------------------------------------------------------

# Device types on which use_fp16 layers compute in float16; on others they run float32. Tests add 'cpu' to reach the fp16 path.
FP16_DEVICES = ('cuda',)

#----------------------------------------------------------------------------

@misc.profiled_function
def modulated_conv2d(
    x,                  # Input activations: [batch, in_channels, in_height, in_width].
    w,                  # Weights: [out_channels, in_channels, kernel_height, kernel_width].
    s,                  # Styles: [batch, in_channels].
    demodulate  = True, # Normalise each output channel's weights (StyleGAN2 demodulation)?
    padding     = 0,    # Zeros added on every side before the convolution.
    input_gain  = None, # Optional scale of the input channels: [], [in_channels] or [batch, in_channels].
):
    """Style-modulated convolution (StyleGAN2 eq. 1-3).

    Executed as scale inputs -> one shared convolution -> scale outputs, which equals convolving each
    sample with its own modulated, demodulated weights but runs as an ordinary batched convolution:
    several times faster than a grouped convolution over per-sample weights, backward pass included.
    With demodulation, w and s are first brought to unit RMS; demodulation cancels that scaling
    exactly, but it keeps the intermediate products in a safe numeric range.
    """
    with misc.suppress_tracer_warnings():
        batch_size = int(x.shape[0])
    _out_channels, in_channels, kh, kw = w.shape
    misc.assert_shape(x, [batch_size, in_channels, None, None])
    misc.assert_shape(s, [batch_size, in_channels])

    if demodulate:
        w = w * w.square().mean([1, 2, 3], keepdim=True).rsqrt()
        s = s * s.square().mean().rsqrt()
        # Norm of the per-sample weights w*s without forming them: sum_ik (w_oik s_i)^2 = sum_i s_i^2 sum_k w_oik^2.
        dcoefs = (s.square() @ w.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt() # [batch, out_channels]
    if input_gain is not None:
        s = s * input_gain.expand(batch_size, in_channels) # [batch, in_channels]

    x = x * s.to(x.dtype).reshape(batch_size, -1, 1, 1)
    x = conv2d_gradfix.conv2d(input=x, weight=w.to(x.dtype), padding=padding)
    if demodulate:
        x = x * dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1)
    return x # [batch, out_channels, H', W']

#----------------------------------------------------------------------------

@persistence.persistent_class
class FullyConnectedLayer(torch.nn.Module):
    """Dense layer with equalized learning rate: parameters are stored at unit scale, gains applied at runtime."""

    def __init__(self,
        in_features,                # Input width.
        out_features,               # Output width.
        activation      = 'linear', # Name in bias_act.activation_funcs.
        bias            = True,     # Learn a bias, added before the activation?
        lr_multiplier   = 1,        # Effective learning-rate scale of this layer.
        weight_init     = 1,        # Std of the effective weights at initialisation.
        bias_init       = 0,        # Effective bias at initialisation: scalar or one value per output.
    ):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) * (weight_init / lr_multiplier))
        bias_init = np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_features])
        self.bias = torch.nn.Parameter(torch.from_numpy(bias_init / lr_multiplier)) if bias else None
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x):
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == 'linear' and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act.bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self):
        return f'in_features={self.in_features:d}, out_features={self.out_features:d}, activation={self.activation:s}'

#----------------------------------------------------------------------------

@persistence.persistent_class
class MappingNetwork(torch.nn.Module):
    """z (and label c) -> intermediate latent w, broadcast to every synthesis layer; tracks the mean of w for truncation."""

    def __init__(self,
        z_dim,                      # Width of the latent z.
        c_dim,                      # Width of the label c, 0 = unconditional.
        w_dim,                      # Width of the intermediate latent w.
        num_ws,                     # How many copies of w to output (one per synthesis layer input).
        num_layers      = 2,        # Depth of the MLP.
        lr_multiplier   = 0.01,     # Learning-rate scale of the MLP layers.
        w_avg_beta      = 0.998,    # EMA decay of the running mean of w (used for truncation).
    ):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta

        # Label embedding and MLP.
        self.embed = FullyConnectedLayer(self.c_dim, self.w_dim) if self.c_dim > 0 else None
        features = [self.z_dim + (self.w_dim if self.c_dim > 0 else 0)] + [self.w_dim] * self.num_layers
        for idx, in_features, out_features in zip(range(num_layers), features[:-1], features[1:]):
            layer = FullyConnectedLayer(in_features, out_features, activation='lrelu', lr_multiplier=lr_multiplier)
            setattr(self, f'fc{idx}', layer)
        self.register_buffer('w_avg', torch.zeros([w_dim]))

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        misc.assert_shape(z, [None, self.z_dim])
        if truncation_cutoff is None:
            truncation_cutoff = self.num_ws

        # Embed, normalize to unit second moment, and concatenate inputs.
        x = z.to(torch.float32)
        x = x * (x.square().mean(1, keepdim=True) + 1e-8).rsqrt()
        if self.c_dim > 0:
            misc.assert_shape(c, [None, self.c_dim])
            y = self.embed(c.to(torch.float32))
            y = y * (y.square().mean(1, keepdim=True) + 1e-8).rsqrt()
            x = torch.cat([x, y], dim=1)

        # MLP.
        for idx in range(self.num_layers):
            x = getattr(self, f'fc{idx}')(x)

        # Running mean of w, the centre of truncation.
        if update_emas:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))

        # One copy per synthesis input; truncation pulls the first truncation_cutoff copies towards the mean.
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1]) # [batch, num_ws, w_dim]
        if truncation_psi != 1:
            x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x

    def extra_repr(self):
        return f'z_dim={self.z_dim:d}, c_dim={self.c_dim:d}, w_dim={self.w_dim:d}, num_ws={self.num_ws:d}'

#----------------------------------------------------------------------------

@persistence.persistent_class
class SynthesisInput(torch.nn.Module):
    """Fourier-feature input (paper sec. 3.2): band-limited sinusoids in continuous coordinates.

    The per-sample rotation/translation predicted from w, and the user transform, act on the
    coordinates, so the input itself is exactly equivariant.
    """

    def __init__(self,
        w_dim,          # Width of the intermediate latent w.
        channels,       # Number of Fourier features.
        size,           # Output size in samples, margin included: int or [width, height].
        sampling_rate,  # Samples per unit length of the output grid.
        bandwidth,      # Largest frequency of the features (cycles per unit length).
    ):
        super().__init__()
        self.w_dim = w_dim
        self.channels = channels
        self.size = np.broadcast_to(np.asarray(size), [2])
        self.sampling_rate = sampling_rate
        self.bandwidth = bandwidth

        # Random frequencies, concentrated towards low frequencies, and random phases.
        freqs = torch.randn([self.channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs /= radii * radii.square().exp().pow(0.25)
        freqs *= bandwidth
        phases = torch.rand([self.channels]) - 0.5

        self.weight = torch.nn.Parameter(torch.randn([self.channels, self.channels]))
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=[1, 0, 0, 0])
        self.register_buffer('transform', torch.eye(3, 3)) # Inverse of the transform a user wants applied to the output.
        self.register_buffer('freqs', freqs)
        self.register_buffer('phases', phases)

    def forward(self, w):
        transforms = self.transform.unsqueeze(0) # [1, 3, 3]
        freqs = self.freqs.unsqueeze(0) # [1, C, 2]
        phases = self.phases.unsqueeze(0) # [1, C]

        # Predicted rotation (unit complex number) and translation.
        t = self.affine(w) # [batch, 4]: (r_c, r_s, t_x, t_y)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        m_r = torch.eye(3, device=w.device).unsqueeze(0).repeat([w.shape[0], 1, 1]) # [batch, 3, 3]
        m_r[:, 0, 0] = t[:, 0]
        m_r[:, 0, 1] = -t[:, 1]
        m_r[:, 1, 0] = t[:, 1]
        m_r[:, 1, 1] = t[:, 0]
        m_t = torch.eye(3, device=w.device).unsqueeze(0).repeat([w.shape[0], 1, 1]) # [batch, 3, 3]
        m_t[:, 0, 2] = -t[:, 2]
        m_t[:, 1, 2] = -t[:, 3]
        transforms = m_r @ m_t @ transforms # [batch, 3, 3]: output coordinates -> feature coordinates.

        # Transform the frequencies and phases instead of the sampling grid.
        phases = phases + (freqs @ transforms[:, :2, 2:]).squeeze(2) # [batch, C]
        freqs = freqs @ transforms[:, :2, :2] # [batch, C, 2]

        # Fade out frequencies that would alias at this sampling rate.
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)

        # Pixel-centre grid with spacing 1/sampling_rate, centred on the origin: [1, H, W, 2].
        theta = torch.eye(2, 3, device=w.device)
        theta[0, 0] = 0.5 * self.size[0] / self.sampling_rate
        theta[1, 1] = 0.5 * self.size[1] / self.sampling_rate
        grids = torch.nn.functional.affine_grid(theta.unsqueeze(0), [1, 1, self.size[1], self.size[0]], align_corners=False)

        # Sinusoids: [batch, H, W, C], then mix channels and go to NCHW.
        x = (grids.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3) # [batch, H, W, C]
        x = x + phases.unsqueeze(1).unsqueeze(2)
        x = torch.sin(x * (np.pi * 2))
        x = x * amplitudes.unsqueeze(1).unsqueeze(2)
        x = x @ (self.weight / np.sqrt(self.channels)).t()
        x = x.permute(0, 3, 1, 2) # [batch, C, H, W]
        misc.assert_shape(x, [w.shape[0], self.channels, int(self.size[1]), int(self.size[0])])
        return x

    def extra_repr(self):
        return '\n'.join([
            f'w_dim={self.w_dim:d}, channels={self.channels:d}, size={list(self.size)},',
            f'sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}'])

#----------------------------------------------------------------------------

@persistence.persistent_class
class SynthesisLayer(torch.nn.Module):
    """Modulated convolution followed by the alias-free nonlinearity (paper sec. 3.2-3.3):
    upsample, leaky ReLU, low-pass and downsample, all inside one filtered_lrelu call.
    """

    def __init__(self,
        w_dim,                          # Width of the intermediate latent w.
        is_torgb,                       # Last layer: 1x1 conv to image channels, no demodulation, linear?
        is_critically_sampled,          # Cutoff at Nyquist (the last layers): never use a radial filter.
        use_fp16,                       # Run in float16 (on CUDA only)?

        # Geometry of input and output signals (frequencies in cycles per unit length).
        in_channels,                    # Input channels.
        out_channels,                   # Output channels.
        in_size,                        # Input size in samples: int or [width, height].
        out_size,                       # Output size in samples: int or [width, height].
        in_sampling_rate,               # Input sampling rate s.
        out_sampling_rate,              # Output sampling rate s.
        in_cutoff,                      # Input cutoff f_c.
        out_cutoff,                     # Output cutoff f_c.
        in_half_width,                  # Input transition half-width f_h.
        out_half_width,                 # Output transition half-width f_h.

        # Design choices.
        conv_kernel             = 3,    # Conv kernel size (ToRGB always uses 1).
        filter_size             = 6,    # Filter taps per sample of the lower of the two rates.
        lrelu_upsampling        = 2,    # Oversampling of the nonlinearity relative to the higher rate (not for ToRGB).
        use_radial_filters      = False,# Radially symmetric (jinc) downsampling filter in non-critical layers?
        conv_clamp              = 256,  # Clamp pre-filter activations to +-X, None = no clamping.
        magnitude_ema_beta      = 0.999,# EMA decay of the input's mean square.
    ):
        super().__init__()
        self.w_dim = w_dim
        self.is_torgb = is_torgb
        self.is_critically_sampled = is_critically_sampled
        self.use_fp16 = use_fp16
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.in_size = np.broadcast_to(np.asarray(in_size), [2])
        self.out_size = np.broadcast_to(np.asarray(out_size), [2])
        self.in_sampling_rate = in_sampling_rate
        self.out_sampling_rate = out_sampling_rate
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.in_cutoff = in_cutoff
        self.out_cutoff = out_cutoff
        self.in_half_width = in_half_width
        self.out_half_width = out_half_width
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta

        # Parameters; the magnitude EMA starts at 1 (no gain).
        self.affine = FullyConnectedLayer(self.w_dim, self.in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([self.out_channels, self.in_channels, self.conv_kernel, self.conv_kernel]))
        self.bias = torch.nn.Parameter(torch.zeros([self.out_channels]))
        self.register_buffer('magnitude_ema', torch.ones([]))

        # Interpolation filter for the up_factor upsampling before the nonlinearity.
        self.up_factor = int(np.rint(self.tmp_sampling_rate / self.in_sampling_rate))
        assert self.in_sampling_rate * self.up_factor == self.tmp_sampling_rate
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not self.is_torgb else 1
        self.register_buffer('up_filter', self.design_lowpass_filter(
            numtaps=self.up_taps, cutoff=self.in_cutoff, width=self.in_half_width*2, fs=self.tmp_sampling_rate))

        # Anti-aliasing filter for the down_factor downsampling after the nonlinearity.
        self.down_factor = int(np.rint(self.tmp_sampling_rate / self.out_sampling_rate))
        assert self.out_sampling_rate * self.down_factor == self.tmp_sampling_rate
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not self.is_torgb else 1
        self.down_radial = use_radial_filters and not self.is_critically_sampled
        self.register_buffer('down_filter', self.design_lowpass_filter(
            numtaps=self.down_taps, cutoff=self.out_cutoff, width=self.out_half_width*2, fs=self.tmp_sampling_rate, radial=self.down_radial))

        # Padding that maps the (in_size + conv growth) input onto exactly out_size output samples,
        # split so that the pixel centres of input and output stay aligned.
        pad_total = (self.out_size - 1) * self.down_factor + 1 # samples needed before decimation
        pad_total -= (self.in_size + self.conv_kernel - 1) * self.up_factor # samples after conv and upsampling
        pad_total += self.up_taps + self.down_taps - 2 # samples eaten by the two valid FIRs
        pad_lo = (pad_total + self.up_factor) // 2 # pixel-centre (half-sample) convention, paper appendix C
        pad_hi = pad_total - pad_lo
        self.padding = [int(pad_lo[0]), int(pad_hi[0]), int(pad_lo[1]), int(pad_hi[1])]

    def forward(self, x, w, noise_mode='random', force_fp32=False, update_emas=False):
        assert noise_mode in ['random', 'const', 'none'] # unused: the layer has no noise inputs
        misc.assert_shape(x, [None, self.in_channels, int(self.in_size[1]), int(self.in_size[0])])
        misc.assert_shape(w, [x.shape[0], self.w_dim])

        # Track input magnitude and normalise by it (replaces the normalising effect of demodulating the previous layer).
        if update_emas:
            magnitude_cur = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(magnitude_cur.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()

        # Styles; ToRGB has no demodulation, so it carries the equalized-lr weight gain here.
        styles = self.affine(w)
        if self.is_torgb:
            weight_gain = 1 / np.sqrt(self.in_channels * (self.conv_kernel ** 2))
            styles = styles * weight_gain

        # Modulated convolution; fp16 is only worth it on CUDA (tests reach it on CPU through FP16_DEVICES).
        dtype = torch.float16 if (self.use_fp16 and not force_fp32 and x.device.type in FP16_DEVICES) else torch.float32
        x = modulated_conv2d(x=x.to(dtype), w=self.weight, s=styles,
            padding=self.conv_kernel-1, demodulate=(not self.is_torgb), input_gain=input_gain)

        # Bias, upsample, leaky ReLU, clamp, low-pass, downsample (ToRGB: bias and clamp only).
        gain = 1 if self.is_torgb else np.sqrt(2)
        slope = 1 if self.is_torgb else 0.2
        x = filtered_lrelu.filtered_lrelu(x=x, fu=self.up_filter, fd=self.down_filter, b=self.bias.to(x.dtype),
            up=self.up_factor, down=self.down_factor, padding=self.padding, gain=gain, slope=slope, clamp=self.conv_clamp)

        misc.assert_shape(x, [None, self.out_channels, int(self.out_size[1]), int(self.out_size[0])])
        assert x.dtype == dtype
        return x

    @staticmethod
    def design_lowpass_filter(numtaps, cutoff, width, fs, radial=False):
        """Kaiser-windowed low-pass FIR with unit DC gain: 1-D (separable) or 2-D radially symmetric (jinc)."""
        assert numtaps >= 1

        # No resampling at this end of the layer.
        if numtaps == 1:
            return None

        # Separable: 1-D Kaiser-window design, applied along both axes.
        if not radial:
            f = scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
            return torch.as_tensor(f, dtype=torch.float32)

        # Radially symmetric jinc-based filter: the 2-D analogue of sinc, windowed by a separable Kaiser window.
        x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
        r = np.hypot(*np.meshgrid(x, x))
        f = scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
        beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
        w = np.kaiser(numtaps, beta)
        f *= np.outer(w, w)
        f /= np.sum(f)
        return torch.as_tensor(f, dtype=torch.float32)

    def extra_repr(self):
        return '\n'.join([
            f'w_dim={self.w_dim:d}, is_torgb={self.is_torgb},',
            f'is_critically_sampled={self.is_critically_sampled}, use_fp16={self.use_fp16},',
            f'in_sampling_rate={self.in_sampling_rate:g}, out_sampling_rate={self.out_sampling_rate:g},',
            f'in_cutoff={self.in_cutoff:g}, out_cutoff={self.out_cutoff:g},',
            f'in_half_width={self.in_half_width:g}, out_half_width={self.out_half_width:g},',
            f'in_size={list(self.in_size)}, out_size={list(self.out_size)},',
            f'in_channels={self.in_channels:d}, out_channels={self.out_channels:d}'])

#----------------------------------------------------------------------------

@persistence.persistent_class
class SynthesisNetwork(torch.nn.Module):
    """Fourier input followed by num_layers+1 alias-free layers whose cutoffs grow geometrically (paper fig. 4b)."""

    def __init__(self,
        w_dim,                          # Width of the intermediate latent w.
        img_resolution,                 # Output image size in pixels.
        img_channels,                   # Output image channels.
        channel_base        = 32768,    # Channels of a layer = channel_base / 2 / its cutoff ...
        channel_max         = 512,      # ... but at most this many.
        num_layers          = 14,       # Synthesis layers between the Fourier input and ToRGB.
        num_critical        = 2,        # How many of the last layers sample at exactly twice their cutoff.
        first_cutoff        = 2,        # f_c of the first layer.
        first_stopband      = 2**2.1,   # f_t of the first layer.
        last_stopband_rel   = 2**0.3,   # f_t of the last layer divided by its f_c.
        margin_size         = 10,       # Extra samples kept around the image on each side.
        output_scale        = 0.25,     # Multiplier of the final image.
        num_fp16_res        = 4,        # Layers whose rate exceeds img_resolution / 2**num_fp16_res run in fp16.
        **layer_kwargs,                 # Passed on to every SynthesisLayer.
    ):
        super().__init__()
        self.w_dim = w_dim
        self.num_ws = num_layers + 2
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_layers = num_layers
        self.num_critical = num_critical
        self.margin_size = margin_size
        self.output_scale = output_scale
        self.num_fp16_res = num_fp16_res

        # Geometric progression of cutoff and minimum stopband from the first to the last layer.
        last_cutoff = self.img_resolution / 2 # f_{c,N}
        last_stopband = last_cutoff * last_stopband_rel # f_{t,N}
        exponents = np.minimum(np.arange(self.num_layers + 1) / (self.num_layers - self.num_critical), 1)
        cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents # f_c[i]
        stopbands = first_stopband * (last_stopband / first_stopband) ** exponents # f_t[i]

        # Smallest power-of-two sampling rate that holds the stopband, and the resulting layer geometry.
        sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, self.img_resolution)))) # s[i]
        half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs # f_h[i]
        sizes = sampling_rates + self.margin_size * 2
        sizes[-2:] = self.img_resolution
        channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
        channels[-1] = self.img_channels

        # Construct layers.
        self.input = SynthesisInput(
            w_dim=self.w_dim, channels=int(channels[0]), size=int(sizes[0]),
            sampling_rate=sampling_rates[0], bandwidth=cutoffs[0])
        self.layer_names = []
        for idx in range(self.num_layers + 1):
            prev = max(idx - 1, 0)
            is_torgb = (idx == self.num_layers)
            is_critically_sampled = (idx >= self.num_layers - self.num_critical)
            use_fp16 = (sampling_rates[idx] * (2 ** self.num_fp16_res) > self.img_resolution)
            layer = SynthesisLayer(
                w_dim=self.w_dim, is_torgb=is_torgb, is_critically_sampled=is_critically_sampled, use_fp16=use_fp16,
                in_channels=int(channels[prev]), out_channels=int(channels[idx]),
                in_size=int(sizes[prev]), out_size=int(sizes[idx]),
                in_sampling_rate=int(sampling_rates[prev]), out_sampling_rate=int(sampling_rates[idx]),
                in_cutoff=cutoffs[prev], out_cutoff=cutoffs[idx],
                in_half_width=half_widths[prev], out_half_width=half_widths[idx],
                **layer_kwargs)
            name = f'L{idx}_{layer.out_size[0]}_{layer.out_channels}'
            setattr(self, name, layer)
            self.layer_names.append(name)

    def forward(self, ws, **layer_kwargs):
        misc.assert_shape(ws, [None, self.num_ws, self.w_dim])
        ws = ws.to(torch.float32).unbind(dim=1)

        x = self.input(ws[0])
        for name, w in zip(self.layer_names, ws[1:]):
            x = getattr(self, name)(x, w, **layer_kwargs)
        if self.output_scale != 1:
            x = x * self.output_scale

        misc.assert_shape(x, [None, self.img_channels, self.img_resolution, self.img_resolution])
        return x.to(torch.float32)

    def extra_repr(self):
        return '\n'.join([
            f'w_dim={self.w_dim:d}, num_ws={self.num_ws:d},',
            f'img_resolution={self.img_resolution:d}, img_channels={self.img_channels:d},',
            f'num_layers={self.num_layers:d}, num_critical={self.num_critical:d},',
            f'margin_size={self.margin_size:d}, num_fp16_res={self.num_fp16_res:d}'])

#----------------------------------------------------------------------------

@persistence.persistent_class
class Generator(torch.nn.Module):
    """Mapping network + alias-free synthesis network."""

    def __init__(self,
        z_dim,                      # Width of the latent z.
        c_dim,                      # Width of the label c, 0 = unconditional.
        w_dim,                      # Width of the intermediate latent w.
        img_resolution,             # Output image size in pixels.
        img_channels,               # Output image channels.
        mapping_kwargs      = {},   # Passed on to MappingNetwork.
        **synthesis_kwargs,         # Passed on to SynthesisNetwork.
    ):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        # Synthesis is built first: parameter order (synthesis before mapping) is part of the pickle/EMA contract.
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs)

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, update_emas=update_emas)
        img = self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)
        return img

#----------------------------------------------------------------------------
