"""Clip loss of StyleSV (Towards Smooth Video Composition, ICLR 2023): the StyleGAN2 loss on clips of
frames at sampled times, with one augmentation draw per clip and R1 on real clips (averaged over their frames)."""

import numpy as np
import torch
from torch_utils import training_stats
from torch_utils.ops import conv2d_gradfix
from torch_utils.ops import upfirdn2d
from training import loss

#----------------------------------------------------------------------------

def blur(img, sigma):
    """Gaussian blur of D's input with std sigma pixels (the StyleGAN3 fade-in); no-op below 1/3 pixel."""
    radius = int(np.floor(sigma * 3))
    if radius <= 0:
        return img
    f = torch.arange(-radius, radius + 1, device=img.device).div(sigma).square().neg().exp2()
    return upfirdn2d.filter2d(img, f / f.sum())

#----------------------------------------------------------------------------

def rng_state_functions(device):
    """(get, set) of the random state that draws on `device` consume: the CPU generator's, on CUDA with the device's."""
    if device.type != 'cuda':
        return torch.get_rng_state, torch.set_rng_state
    def get_state():
        return torch.get_rng_state(), torch.cuda.get_rng_state(device)
    def set_state(state):
        torch.set_rng_state(state[0])
        torch.cuda.set_rng_state(state[1], device)
    return get_state, set_state

def augment_clips(augment_pipe, img, num_frames):
    """Augment img [batch * frames, C, H, W] (video-major) with one draw of parameters per clip.

    The upstream AugmentPipe takes images [N, C, H, W] and draws independent parameters for every
    row from the global RNG (the CPU generator, or the device's generator on CUDA); what it draws
    depends on N only, never on the pixels. So frame f of every clip ([batch, C, H, W]) goes through
    the pipe with the RNG rewound to the same state each time: row b of every call gets the same
    parameters, i.e. all frames of clip b share one transform, and different clips get different ones.
    The RNG ends where a single call would have left it. Works with NVIDIA's AugmentPipe unchanged.
    """
    if num_frames == 1:
        return augment_pipe(img)
    clips = img.reshape(-1, num_frames, *img.shape[1:]) # [batch, frames, C, H, W]
    get_state, set_state = rng_state_functions(img.device)
    state = get_state()
    frames = []
    for f in range(num_frames):
        set_state(state)
        frames.append(augment_pipe(clips[:, f]))
    return torch.stack(frames, dim=1).reshape(img.shape) # [batch * frames, C, H, W]

#----------------------------------------------------------------------------

class VideoLoss(loss.StyleGAN2Loss):
    """StyleGAN2's non-saturating logistic loss with lazy R1 (and optional path length) on clips.

    Reals: real_img [batch * frames, C, H, W] in [-1, 1] at times real_t [batch, frames]. Fakes:
    G(z, c) at times gen_t [batch, frames], as G.mapping then G.synthesis(ws, c=c, t=t), so style
    mixing and truncation work as upstream. D scores whole clips: D(img, c, t) -> [batch, 1]. Labels
    are per clip. Without times (real_t = gen_t = None) the networks are called as upstream image
    networks, so the same loss also runs the image stage. Constructor and reported statistics are
    upstream's: Loss/scores/{real,fake}, Loss/signs/{real,fake}, Loss/G/loss, Loss/D/loss,
    Loss/r1_penalty, Loss/D/reg, Loss/pl_penalty, Loss/G/reg.
    """

    def run_G(self, z, c, update_emas=False, t=None):
        ws = self.G.mapping(z, c, update_emas=update_emas)
        if self.style_mixing_prob > 0:
            ws = self.mix_styles(ws, z, c)
        if t is None:
            return self.G.synthesis(ws, update_emas=update_emas), ws
        return self.G.synthesis(ws, c=c, t=t, update_emas=update_emas), ws

    def mix_styles(self, ws, z, c):
        """With probability style_mixing_prob, the ws from a random layer on come from a second latent."""
        num_ws = ws.shape[1]
        mixing = torch.rand([], device=ws.device) < self.style_mixing_prob
        cutoff = torch.where(mixing, torch.randint(1, num_ws, [], device=ws.device), torch.full([], num_ws, device=ws.device))
        ws_other = self.G.mapping(torch.randn_like(z), c, update_emas=False)
        return torch.where((torch.arange(num_ws, device=ws.device) >= cutoff)[None, :, None], ws_other, ws)

    def run_D(self, img, c, blur_sigma=0, update_emas=False, t=None):
        img = blur(img, blur_sigma)
        if self.augment_pipe is not None:
            img = augment_clips(self.augment_pipe, img, num_frames=1 if t is None else t.shape[1])
        if t is None:
            return self.D(img, c, update_emas=update_emas)
        return self.D(img, c, t=t, update_emas=update_emas)

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg, real_t=None, gen_t=None):
        assert phase in ['Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth']
        if self.pl_weight == 0:
            phase = {'Greg': 'none', 'Gboth': 'Gmain'}.get(phase, phase)
        if self.r1_gamma == 0:
            phase = {'Dreg': 'none', 'Dboth': 'Dmain'}.get(phase, phase)
        blur_sigma = max(1 - cur_nimg / (self.blur_fade_kimg * 1e3), 0) * self.blur_init_sigma if self.blur_fade_kimg > 0 else 0
        if phase in ['Gmain', 'Gboth']:
            self.G_adversarial(gen_z, gen_c, gen_t, gain, blur_sigma)
        if phase in ['Greg', 'Gboth']:
            self.G_path_length(gen_z, gen_c, gen_t, gain)
        loss_Dgen = 0
        if phase in ['Dmain', 'Dboth']:
            loss_Dgen = self.D_fake(gen_z, gen_c, gen_t, gain, blur_sigma)
        if phase in ['Dmain', 'Dreg', 'Dboth']:
            self.D_real(real_img, real_c, real_t, gain, blur_sigma, loss_Dgen,
                main=(phase != 'Dreg'), r1=(phase != 'Dmain'))

    def G_adversarial(self, gen_z, gen_c, gen_t, gain, blur_sigma):
        """softplus(-D(G(z))): make D call the generated clips real."""
        gen_img, _ws = self.run_G(gen_z, gen_c, t=gen_t)
        gen_logits = self.run_D(gen_img, gen_c, blur_sigma=blur_sigma, t=gen_t)
        training_stats.report('Loss/scores/fake', gen_logits)
        training_stats.report('Loss/signs/fake', gen_logits.sign())
        loss_G = torch.nn.functional.softplus(-gen_logits)
        training_stats.report('Loss/G/loss', loss_G)
        loss_G.mean().mul(gain).backward()

    def G_path_length(self, gen_z, gen_c, gen_t, gain):
        """StyleGAN2's path-length penalty with the Jacobian of whole clips w.r.t. ws (off by default, as the paper)."""
        batch = gen_z.shape[0] // self.pl_batch_shrink
        gen_img, gen_ws = self.run_G(gen_z[:batch], gen_c[:batch], t=None if gen_t is None else gen_t[:batch])
        pl_noise = torch.randn_like(gen_img) / np.sqrt(gen_img.shape[2] * gen_img.shape[3])
        with conv2d_gradfix.no_weight_gradients(self.pl_no_weight_grad):
            pl_grads = torch.autograd.grad(outputs=[(gen_img * pl_noise).sum()], inputs=[gen_ws], create_graph=True, only_inputs=True)[0]
        pl_lengths = pl_grads.square().sum(2).mean(1).sqrt() # [batch]
        pl_mean = self.pl_mean.lerp(pl_lengths.mean(), self.pl_decay)
        self.pl_mean.copy_(pl_mean.detach())
        pl_penalty = (pl_lengths - pl_mean).square()
        training_stats.report('Loss/pl_penalty', pl_penalty)
        loss_Gpl = pl_penalty * self.pl_weight
        training_stats.report('Loss/G/reg', loss_Gpl)
        loss_Gpl.mean().mul(gain).backward()

    def D_fake(self, gen_z, gen_c, gen_t, gain, blur_sigma):
        """softplus(D(G(z))): push D's score of generated clips down; G runs without a graph."""
        with torch.no_grad():
            gen_img, _ws = self.run_G(gen_z, gen_c, update_emas=True, t=gen_t)
        gen_logits = self.run_D(gen_img, gen_c, blur_sigma=blur_sigma, update_emas=True, t=gen_t)
        training_stats.report('Loss/scores/fake', gen_logits)
        training_stats.report('Loss/signs/fake', gen_logits.sign())
        loss_Dgen = torch.nn.functional.softplus(gen_logits)
        loss_Dgen.mean().mul(gain).backward()
        return loss_Dgen.detach()

    def D_real(self, real_img, real_c, real_t, gain, blur_sigma, loss_Dgen, main, r1):
        """softplus(-D(x)) on real clips and/or R1: gamma/2 * each frame's |grad of D(clip) w.r.t. the frame|^2,
        averaged over the clip's frames (StyleGAN-V's and StyleSV's R1), so gamma means what it means for images."""
        real_img = real_img.detach().requires_grad_(r1)
        real_logits = self.run_D(real_img, real_c, blur_sigma=blur_sigma, t=real_t)
        training_stats.report('Loss/scores/real', real_logits)
        training_stats.report('Loss/signs/real', real_logits.sign())
        loss_D = 0
        if main:
            loss_D = torch.nn.functional.softplus(-real_logits)
            training_stats.report('Loss/D/loss', loss_Dgen + loss_D)
        if r1:
            with conv2d_gradfix.no_weight_gradients():
                r1_grads = torch.autograd.grad(outputs=[real_logits.sum()], inputs=[real_img], create_graph=True, only_inputs=True)[0]
            num_frames = real_img.shape[0] // real_logits.shape[0]
            r1_penalty = r1_grads.reshape(real_logits.shape[0], num_frames, -1).square().sum(dim=2).mean(dim=1) # [batch]
            training_stats.report('Loss/r1_penalty', r1_penalty)
            loss_Dr1 = r1_penalty.unsqueeze(1) * (self.r1_gamma / 2)
            training_stats.report('Loss/D/reg', loss_Dr1)
            loss_D = loss_D + loss_Dr1
        loss_D.mean().mul(gain).backward()

#----------------------------------------------------------------------------
