"""Augmentation pipeline of StyleGAN2-ADA ("Training Generative Adversarial Networks with Limited Data", Karras et al. 2020, appendix B)."""

import functools
import numpy as np
import scipy.signal
import torch
from torch_utils import persistence
from torch_utils import misc
from torch_utils.ops import upfirdn2d
from torch_utils.ops import grid_sample_gradfix
from torch_utils.ops import conv2d_gradfix

#----------------------------------------------------------------------------
# Low-pass (decomposition) coefficients of orthogonal wavelets, as tabulated by PyWavelets.

wavelets = {
    'haar': [0.7071067811865476, 0.7071067811865476],
    'db1': [0.7071067811865476, 0.7071067811865476],
    'db2': [-0.12940952255126037, 0.2241438680420134, 0.8365163037378079, 0.48296291314453416],
    'db3': [0.03522629188570953, -0.08544127388202666, -0.13501102001025458, 0.45987750211849154, 0.8068915093110925, 0.33267055295008263],
    'db4': [-0.010597401785069032, 0.0328830116668852, 0.030841381835560764, -0.18703481171909309, -0.027983769416859854, 0.6308807679298589, 0.7148465705529157, 0.2303778133088965],
    'db5': [0.0033357252854737712, -0.012580751999081999, -0.006241490212798274, 0.07757149384004572, -0.032244869584638375, -0.24229488706638203, 0.13842814590132074, 0.7243085284377729, 0.6038292697971896, 0.16010239797419293],
    'db6': [-0.0010773010853084796, 0.004777257510945511, 0.0005538422011614961, -0.03158203931748603, 0.027522865530305727, 0.09750160558732304, -0.12976686756726194, -0.22626469396543983, 0.31525035170919763, 0.7511339080210954, 0.49462389039845306, 0.11154074335010947],
    'db7': [0.00035371379997452024, -0.0018016407040474908, 0.0004295779729213665, 0.01255099855609984, -0.01657454163066688, -0.03802993693501441, 0.08061260915108308, 0.07130921926683026, -0.22403618499387498, -0.14390600392856498, 0.4697822874051931, 0.7291320908462351, 0.3965393194819173, 0.07785205408500918],
    'db8': [-0.00011747678412476953, 0.0006754494064505693, -0.00039174037337694705, -0.004870352993451574, 0.008746094047405777, 0.013981027917398282, -0.044088253930794755, -0.017369301001807547, 0.12874742662047847, 0.0004724845739132828, -0.2840155429615469, -0.015829105256349306, 0.5853546836542067, 0.6756307362972898, 0.31287159091429995, 0.05441584224310401],
    'sym2': [-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025],
    'sym3': [0.035226291882100656, -0.08544127388224149, -0.13501102001039084, 0.4598775021193313, 0.8068915093133388, 0.3326705529509569],
    'sym4': [-0.07576571478927333, -0.02963552764599851, 0.49761866763201545, 0.8037387518059161, 0.29785779560527736, -0.09921954357684722, -0.012603967262037833, 0.0322231006040427],
    'sym5': [0.027333068345077982, 0.029519490925774643, -0.039134249302383094, 0.1993975339773936, 0.7234076904024206, 0.6339789634582119, 0.01660210576452232, -0.17532808990845047, -0.021101834024758855, 0.019538882735286728],
    'sym6': [0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633, 0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252, -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148],
    'sym7': [0.002681814568257878, -0.0010473848886829163, -0.01263630340325193, 0.03051551316596357, 0.0678926935013727, -0.049552834937127255, 0.017441255086855827, 0.5361019170917628, 0.767764317003164, 0.2886296317515146, -0.14004724044296152, -0.10780823770381774, 0.004010244871533663, 0.010268176708511255],
    'sym8': [-0.0033824159510061256, -0.0005421323317911481, 0.03169508781149298, 0.007607487324917605, -0.1432942383508097, -0.061273359067658524, 0.4813596512583722, 0.7771857517005235, 0.3644418948353314, -0.05194583810770904, -0.027219029917056003, 0.049137179673607506, 0.003808752013890615, -0.01495225833704823, -0.0003029205147213668, 0.0018899503327594609],
}

#----------------------------------------------------------------------------
# Batched homogeneous matrices. Entries are Python numbers or tensors of one
# common batch shape; the result is [*batch, rows, cols]. `device` is used
# only when every entry is a number.

def matrix(*rows, device=None):
    assert all(len(row) == len(rows[0]) for row in rows)
    tensors = [x for row in rows for x in row if isinstance(x, torch.Tensor)]
    if len(tensors) == 0:
        return misc.constant(np.asarray(rows), device=device)
    ref = tensors[0]
    def entry(x):
        return x if isinstance(x, torch.Tensor) else misc.constant(x, shape=ref.shape, device=ref.device)
    return torch.stack([torch.stack([entry(x) for x in row], dim=-1) for row in rows], dim=-2)

def translate2d(tx, ty, **kwargs):
    return matrix([1, 0, tx], [0, 1, ty], [0, 0, 1], **kwargs)

def translate3d(tx, ty, tz, **kwargs):
    return matrix([1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1], **kwargs)

def scale2d(sx, sy, **kwargs):
    return matrix([sx, 0, 0], [0, sy, 0], [0, 0, 1], **kwargs)

def scale3d(sx, sy, sz, **kwargs):
    return matrix([sx, 0, 0, 0], [0, sy, 0, 0], [0, 0, sz, 0], [0, 0, 0, 1], **kwargs)

def rotate2d(theta, **kwargs):
    c, s = torch.cos(theta), torch.sin(theta)
    return matrix([c, -s, 0], [s, c, 0], [0, 0, 1], **kwargs)

def rotate3d(v, theta, **kwargs):
    """Rotation by theta about the unit axis v[:3] (Rodrigues' formula), as a homogeneous 4x4 matrix."""
    vx, vy, vz = v[..., 0], v[..., 1], v[..., 2]
    c, s = torch.cos(theta), torch.sin(theta)
    d = 1 - c
    return matrix(
        [vx * vx * d + c,      vx * vy * d - vz * s, vx * vz * d + vy * s, 0],
        [vy * vx * d + vz * s, vy * vy * d + c,      vy * vz * d - vx * s, 0],
        [vz * vx * d - vy * s, vz * vy * d + vx * s, vz * vz * d + c,      0],
        [0,                    0,                    0,                    1],
        **kwargs)

def translate2d_inv(tx, ty, **kwargs):
    return translate2d(-tx, -ty, **kwargs)

def scale2d_inv(sx, sy, **kwargs):
    return scale2d(1 / sx, 1 / sy, **kwargs)

def rotate2d_inv(theta, **kwargs):
    return rotate2d(-theta, **kwargs)

#----------------------------------------------------------------------------

def _dilate(f, step):
    """Insert step-1 zeros between the taps of a 1-D filter (the filter of f(z^step))."""
    out = np.zeros((len(f) - 1) * step + 1)
    out[::step] = f
    return out

def _octave_filter_bank(lowpass, num_bands):
    """Zero-phase filters for the octave bands [0, pi/2^(num_bands-1)], ..., [pi/2, pi], lowest first, that add up to a unit impulse.

    For an orthogonal wavelet the autocorrelations of its low-pass and
    (mirrored) high-pass filters are complementary: they sum to an impulse.
    Splitting the low band again at dilation 2, 4, ... therefore telescopes, and
    a per-band gain of 1 leaves the image unchanged.
    """
    lo = np.asarray(lowpass, dtype=np.float64)
    hi = lo * (-1.0) ** np.arange(lo.size)
    lo_power = scipy.signal.convolve(lo, lo[::-1]) / 2 # Unit DC gain.
    hi_power = scipy.signal.convolve(hi, hi[::-1]) / 2 # lo_power + hi_power = impulse.
    bands = []
    low = np.ones(1)
    for level in range(num_bands - 1):
        bands.append(scipy.signal.convolve(low, _dilate(hi_power, 2 ** level)))
        low = scipy.signal.convolve(low, _dilate(lo_power, 2 ** level))
    bands.append(low)
    bank = np.zeros([num_bands, low.size], dtype=np.float32)
    for i, band in enumerate(reversed(bands)):
        start = (low.size - band.size) // 2
        bank[i, start : start + band.size] = band
    return bank

#----------------------------------------------------------------------------

@persistence.persistent_class
class AugmentPipe(torch.nn.Module):
    """Differentiable augmentations applied to everything the discriminator sees (ADA).

    Each augmentation fires independently per sample with probability
    `multiplier * p`, where the buffer `p` is the overall strength that the
    training loop adapts. Arbitrary rotation fires when at least one of its two
    draws does, each with probability 1 - sqrt(1 - rotate * p); imgfilter
    fires per band. The pipeline is differentiable w.r.t. the images (to
    second order when grid_sample_gradfix is enabled), as G's loss and the R1
    penalty need.

    forward() takes images [N, C, H, W] or video clips [N, T, C, H, W]. For
    clips, one set of parameters is drawn per clip and applied identically to
    all T frames (same geometry, colour, filter gains, noise field and
    cutout), so augmentation never adds motion or flicker of its own; the
    output has the input's shape and dtype.
    """

    def __init__(self,
        xflip           = 0,            # Probability multiplier for horizontal flips.
        rotate90        = 0,            # Probability multiplier for rotations by multiples of 90 degrees.
        xint            = 0,            # Probability multiplier for integer translation.
        xint_max        = 0.125,        # Largest integer translation, as a fraction of the image size.
        scale           = 0,            # Probability multiplier for isotropic scaling.
        rotate          = 0,            # Probability multiplier for arbitrary rotation.
        aniso           = 0,            # Probability multiplier for anisotropic scaling.
        xfrac           = 0,            # Probability multiplier for fractional translation.
        scale_std       = 0.2,          # Std of log2(isotropic scale).
        rotate_max      = 1,            # Largest rotation, as a fraction of a half turn (1 = any angle).
        aniso_std       = 0.2,          # Std of log2(anisotropic scale).
        xfrac_std       = 0.125,        # Std of fractional translation, as a fraction of the image size.
        brightness      = 0,            # Probability multiplier for brightness offset.
        contrast        = 0,            # Probability multiplier for contrast scaling.
        lumaflip        = 0,            # Probability multiplier for luma flip.
        hue             = 0,            # Probability multiplier for hue rotation.
        saturation      = 0,            # Probability multiplier for saturation scaling.
        brightness_std  = 0.2,          # Std of the brightness offset.
        contrast_std    = 0.5,          # Std of log2(contrast).
        hue_max         = 1,            # Largest hue rotation, as a fraction of a half turn (1 = any angle).
        saturation_std  = 1,            # Std of log2(saturation).
        imgfilter       = 0,            # Probability multiplier for frequency-band amplification.
        imgfilter_bands = [1, 1, 1, 1], # Per-band probability multipliers, lowest band first.
        imgfilter_std   = 1,            # Std of log2(band gain).
        noise           = 0,            # Probability multiplier for additive Gaussian noise.
        cutout          = 0,            # Probability multiplier for cutout.
        noise_std       = 0.1,          # Noise level is |N(0, 1)| * noise_std.
        cutout_size     = 0.5,          # Side of the cutout square, as a fraction of the image size.
    ):
        super().__init__()
        self.register_buffer('p', torch.ones([])) # Overall strength, set by the training loop.

        # Pixel blitting and general geometric transforms.
        self.xflip      = float(xflip)
        self.rotate90   = float(rotate90)
        self.xint       = float(xint)
        self.xint_max   = float(xint_max)
        self.scale      = float(scale)
        self.rotate     = float(rotate)
        self.aniso      = float(aniso)
        self.xfrac      = float(xfrac)
        self.scale_std  = float(scale_std)
        self.rotate_max = float(rotate_max)
        self.aniso_std  = float(aniso_std)
        self.xfrac_std  = float(xfrac_std)

        # Colour transforms.
        self.brightness     = float(brightness)
        self.contrast       = float(contrast)
        self.lumaflip       = float(lumaflip)
        self.hue            = float(hue)
        self.saturation     = float(saturation)
        self.brightness_std = float(brightness_std)
        self.contrast_std   = float(contrast_std)
        self.hue_max        = float(hue_max)
        self.saturation_std = float(saturation_std)

        # Image-space filtering and corruptions.
        self.imgfilter       = float(imgfilter)
        self.imgfilter_bands = list(imgfilter_bands)
        self.imgfilter_std   = float(imgfilter_std)
        self.noise           = float(noise)
        self.cutout          = float(cutout)
        self.noise_std       = float(noise_std)
        self.cutout_size     = float(cutout_size)

        # Geometric resampling filter: the sym6 wavelet low-pass, used to upsample 2x before and downsample 2x after bilinear sampling.
        self.register_buffer('Hz_geom', upfirdn2d.setup_filter(wavelets['sym6']))

        # Filter bank for the four octave bands, built from the sym2 wavelet: [4, 43].
        self.register_buffer('Hz_fbank', torch.as_tensor(_octave_filter_bank(wavelets['sym2'], num_bands=4)))

    def forward(self, images, debug_percentile=None):
        """Augment images [N, C, H, W] or clips [N, T, C, H, W] (one draw per clip).

        debug_percentile in [0, 1] replaces every random parameter by that
        percentile of its distribution (the firing of each augmentation stays random).
        """
        if not (isinstance(images, torch.Tensor) and images.ndim in (4, 5)):
            raise ValueError('AugmentPipe expects a tensor of images [N, C, H, W] or clips [N, T, C, H, W]')
        clips = images if images.ndim == 5 else images.unsqueeze(1) # [batch, frames, C, H, W]
        batch_size, num_frames, num_channels, height, width = clips.shape
        device = images.device
        x = clips.reshape(batch_size * num_frames, num_channels, height, width).to(torch.float32) # [batch * frames, C, H, W]

        # Parameter draws, one per clip: random, or a fixed percentile when debugging.
        def uniform(*size):
            if debug_percentile is None:
                return torch.rand([batch_size, *size], device=device)
            return torch.full([batch_size, *size], float(debug_percentile), device=device)
        def normal(*size):
            if debug_percentile is None:
                return torch.randn([batch_size, *size], device=device)
            return torch.erfinv(uniform(*size) * 2 - 1) * np.sqrt(2)
        def half_normal():
            if debug_percentile is None:
                return torch.randn([batch_size], device=device).abs()
            return torch.erfinv(uniform()) * np.sqrt(2)
        def integer(n): # Uniform over {0, ..., n-1}.
            return torch.floor(uniform() * n).clamp(max=n - 1)
        def gated(prob, value, neutral): # value where the augmentation fires (probability prob), neutral elsewhere.
            fires = torch.rand([batch_size], device=device) < prob
            fires = fires.reshape([batch_size] + [1] * (value.ndim - 1))
            return torch.where(fires, value, torch.full_like(value, neutral))
        def per_frame(t): # [batch, ...] -> [batch * frames, ...]
            return t.repeat_interleave(num_frames, dim=0)

        # Geometric transforms, composed into one inverse matrix: output pixel -> input pixel
        # (pixel units, origin at the image centre).
        geometric = []
        if self.xflip > 0:
            i = gated(self.xflip * self.p, integer(2), 0)
            geometric.append(scale2d_inv(1 - 2 * i, 1))
        if self.rotate90 > 0:
            i = gated(self.rotate90 * self.p, integer(4), 0)
            geometric.append(rotate2d_inv(-np.pi / 2 * i))
        if self.xint > 0:
            t = gated(self.xint * self.p, (uniform(2) * 2 - 1) * self.xint_max, 0)
            geometric.append(translate2d_inv(torch.round(t[:, 0] * width), torch.round(t[:, 1] * height)))
        if self.scale > 0:
            s = gated(self.scale * self.p, torch.exp2(normal() * self.scale_std), 1)
            geometric.append(scale2d_inv(s, s))
        # Rotation is split into a pre- and a post-rotation around the anisotropic
        # scaling, each firing with p_rot, so that "at least one" fires with rotate * p.
        p_rot = 1 - torch.sqrt((1 - self.rotate * self.p).clamp(0, 1))
        if self.rotate > 0:
            theta = gated(p_rot, (uniform() * 2 - 1) * np.pi * self.rotate_max, 0)
            geometric.append(rotate2d_inv(-theta))
        if self.aniso > 0:
            s = gated(self.aniso * self.p, torch.exp2(normal() * self.aniso_std), 1)
            geometric.append(scale2d_inv(s, 1 / s))
        if self.rotate > 0:
            theta = gated(p_rot, (uniform() * 2 - 1) * np.pi * self.rotate_max, 0)
            geometric.append(rotate2d_inv(-theta))
        if self.xfrac > 0:
            t = gated(self.xfrac * self.p, normal(2) * self.xfrac_std, 0)
            geometric.append(translate2d_inv(t[:, 0] * width, t[:, 1] * height))
        if len(geometric) > 0:
            G_inv = functools.reduce(torch.matmul, geometric) # [batch, 3, 3]
            x = self._resample(x, per_frame(G_inv))

        # Colour transforms, composed into one 4x4 matrix acting on homogeneous RGB.
        luma = misc.constant(np.asarray([1, 1, 1, 0]) / np.sqrt(3), device=device) # Unit luma axis.
        luma_proj = torch.outer(luma, luma)                                      # Projection onto it.
        I_4 = misc.constant(np.eye(4), device=device)
        colour = []
        if self.brightness > 0:
            b = gated(self.brightness * self.p, normal() * self.brightness_std, 0)
            colour.append(translate3d(b, b, b))
        if self.contrast > 0:
            c = gated(self.contrast * self.p, torch.exp2(normal() * self.contrast_std), 1)
            colour.append(scale3d(c, c, c))
        if self.lumaflip > 0:
            i = gated(self.lumaflip * self.p, integer(2), 0)
            colour.append(I_4 - 2 * luma_proj * i[:, None, None]) # Householder reflection about the luma axis.
        if self.hue > 0:
            theta = gated(self.hue * self.p, (uniform() * 2 - 1) * np.pi * self.hue_max, 0)
            colour.append(rotate3d(luma, theta))
        if self.saturation > 0:
            s = gated(self.saturation * self.p, torch.exp2(normal() * self.saturation_std), 1)
            colour.append(luma_proj + (I_4 - luma_proj) * s[:, None, None])
        if len(colour) > 0:
            C = functools.reduce(lambda acc, m: m @ acc, colour) # [batch, 4, 4], first transform applied first.
            x = self._apply_colour(x, per_frame(C))

        # Image-space filtering: each octave band is amplified with its own firing and gain, and each
        # amplification on its own is normalised to keep the expected power of an image whose spectrum
        # falls like a natural image's (band powers [10, 1, 1, 1] / 13); the normalised gains multiply.
        if self.imgfilter > 0:
            if len(self.imgfilter_bands) != self.Hz_fbank.shape[0]:
                raise ValueError(f'imgfilter_bands must have {self.Hz_fbank.shape[0]} entries')
            gains = torch.stack([gated(self.imgfilter * band * self.p, torch.exp2(normal() * self.imgfilter_std), 1)
                for band in self.imgfilter_bands], dim=1) # [batch, bands]
            expected_power = misc.constant(np.asarray([10, 1, 1, 1]) / 13, device=device)
            power = 1 + expected_power * (gains.square() - 1) # Expected power after amplifying band i alone.
            gains = gains / power.prod(dim=1, keepdim=True).sqrt()
            x = self._filter_separable(x, per_frame(gains @ self.Hz_fbank))

        # Additive Gaussian noise: one noise field per clip.
        if self.noise > 0:
            sigma = gated(self.noise * self.p, half_normal() * self.noise_std, 0)
            field = torch.randn([batch_size, 1, num_channels, height, width], device=device) * sigma[:, None, None, None, None]
            x = x + field.expand(-1, num_frames, -1, -1, -1).reshape(x.shape) # [batch, 1, ...] -> [batch * frames, C, H, W]

        # Cutout: zero a square of side cutout_size (relative) at a uniformly random centre.
        if self.cutout > 0:
            size = gated(self.cutout * self.p, torch.full([batch_size], self.cutout_size, device=device), 0)
            centre = uniform(2)
            xs = (torch.arange(width, device=device) + 0.5) / width
            ys = (torch.arange(height, device=device) + 0.5) / height
            outside_x = (xs[None, :] - centre[:, 0:1]).abs() >= size[:, None] / 2 # [batch, W]
            outside_y = (ys[None, :] - centre[:, 1:2]).abs() >= size[:, None] / 2 # [batch, H]
            keep = (outside_x[:, None, :] | outside_y[:, :, None]).to(x.dtype)     # [batch, H, W]
            x = x * per_frame(keep)[:, None]

        return x.to(images.dtype).reshape(images.shape)

    def _resample(self, x, G_inv):
        """Sample x [N, C, H, W] at positions G_inv @ (output pixel), suppressing aliasing (ADA appendix B.2).

        The input is reflect-padded, upsampled 2x with Hz_geom, sampled bilinearly
        on a 2x output grid, and downsampled 2x with the flipped filter, so that up-
        and downsampling together form the zero-phase half-band autocorrelation of
        the wavelet: an identity transform returns the input exactly.

        The nearly symmetric sym6 filter displaces the upsampled content by its
        group delay, 0.20 px. As in the upstream, the transform is conjugated by a
        fixed quarter pixel (half a sample of the 2x grid) instead, so a
        non-identity transform keeps a residual offset of ~0.05 px (a flip mirrors
        about a point 0.05 px off centre). Pickled pipelines and published ADA
        results assume exactly this resampling.
        """
        N, C, H, W = x.shape
        margin = self.Hz_geom.shape[0] // 4 # Filter reach in pixels; the 2x grid extends 2 * margin samples past each edge.

        # Reflect padding, for the whole batch: the farthest transformed pixel-centre corner past the image
        # edge plus 2 * margin pixels, at most size - 1 (all that reflect padding allows). F.pad needs
        # Python ints, hence one host sync.
        cx, cy = (W - 1) / 2, (H - 1) / 2
        corners = matrix([-cx, cx, cx, -cx], [-cy, -cy, cy, cy], [1, 1, 1, 1], device=x.device) # [3, 4]
        src = G_inv[:, :2, :] @ corners # [N, 2, 4]
        reach = torch.cat([-src, src], dim=1).amax(dim=(0, 2)) # Left, up, right, down of the centre: [4]
        pad = reach + misc.constant([2 * margin - cx, 2 * margin - cy] * 2, device=x.device)
        pad = pad.clamp(min=0).minimum(misc.constant([W - 1, H - 1] * 2, device=x.device)).ceil()
        px0, py0, px1, py1 = [int(p) for p in pad.tolist()]
        x = torch.nn.functional.pad(x, [px0, px1, py0, py1], mode='reflect')
        x = upfirdn2d.upsample2d(x=x, f=self.Hz_geom, up=2)
        G_inv = translate2d(-0.25, -0.25, device=x.device) @ G_inv @ translate2d(0.25, 0.25, device=x.device) # The quarter-pixel conjugation.

        # Positions of the 2x output grid, in output pixel units with origin at the image centre.
        xs = (torch.arange(2 * W + 4 * margin, device=x.device) - 2 * margin + 0.5) / 2 - W / 2
        ys = (torch.arange(2 * H + 4 * margin, device=x.device) - 2 * margin + 0.5) / 2 - H / 2

        # Bilinear sampling; grid_sample's [-1, 1] spans the padded, upsampled image edge to edge.
        G = G_inv[:, :2, :, None, None] # [N, 2, 3, 1, 1]
        src_pos = G[:, :, 0] * xs[None, None, :] + G[:, :, 1] * ys[:, None] + G[:, :, 2] # [N, 2, 2H', 2W']
        grid = torch.stack([
            (src_pos[:, 0] + W / 2 + px0) * (2 / (W + px0 + px1)) - 1,
            (src_pos[:, 1] + H / 2 + py0) * (2 / (H + py0 + py1)) - 1,
        ], dim=3) # [N, 2H', 2W', 2]
        x = grid_sample_gradfix.grid_sample(x, grid)
        return upfirdn2d.downsample2d(x=x, f=self.Hz_geom, down=2, padding=-2 * margin, flip_filter=True)

    @staticmethod
    def _apply_colour(x, C):
        """Apply homogeneous colour matrices C [N, 4, 4] to x [N, C, H, W]; a grey image is treated as (g, g, g) and the RGB result averaged."""
        N, num_channels, H, W = x.shape
        pixels = x.reshape(N, num_channels, H * W) # [N, C, H*W]
        if num_channels == 3:
            pixels = C[:, :3, :3] @ pixels + C[:, :3, 3:]
        elif num_channels == 1:
            C = C[:, :3, :].mean(dim=1, keepdim=True) # [N, 1, 4]
            pixels = pixels * C[:, :, :3].sum(dim=2, keepdim=True) + C[:, :, 3:]
        else:
            raise ValueError(f'Colour augmentations need images with 1 or 3 channels, got {num_channels}')
        return pixels.reshape(N, num_channels, H, W)

    @staticmethod
    def _filter_separable(x, Hz):
        """Filter each sample of x [N, C, H, W] horizontally and vertically with its own odd-length, zero-phase 1-D filter Hz [N, taps] (reflect padding)."""
        N, C, H, W = x.shape
        pad = Hz.shape[1] // 2
        if min(H, W) <= pad:
            raise ValueError(f'imgfilter needs images larger than {pad}x{pad} pixels, got {W}x{H}')
        weight = Hz.repeat_interleave(C, dim=0) # [N*C, taps]
        x = torch.nn.functional.pad(x, [pad, pad, pad, pad], mode='reflect').reshape(1, N * C, H + 2 * pad, W + 2 * pad) # [1, N*C, H', W']
        x = conv2d_gradfix.conv2d(input=x, weight=weight[:, None, None, :], groups=N * C)
        x = conv2d_gradfix.conv2d(input=x, weight=weight[:, None, :, None], groups=N * C)
        return x.reshape(N, C, H, W)

#----------------------------------------------------------------------------
