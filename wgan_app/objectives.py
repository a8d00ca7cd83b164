"""What each variant *is*: its losses, what follows a critic update, its recipe, its title.

One class per objective, in the spirit of StyleGAN3's `training/loss.py`: the trainer calls
`critic_loss`, `generator_loss` and `after_critic_update` and knows no loss. The ACGAN class
terms are a wrapper around a Wasserstein objective. Config validation, the CLI's help, the UI's
variant list and the model cards all read the class attributes below, so adding an objective
(WGAN-LP, hinge) means adding one class and one line in `VARIANTS`.

Networks follow one interface: G(z, y) -> x, and D(x) -> (score (B,), class logits (B, K) or
None). Every loss is *minimised*; `stats` are detached 0-d tensors (the trainer averages them
over a critic phase and reads them once, not once per critic step).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Optional

import torch
import torch.nn as nn

from . import losses

RECIPES = ("fast", "paper")
# What every recipe decides unless the person sets it: the paper-sized networks (the WGAN-GP
# paper's MNIST critic ends at 4x4 with 4x its width) and the run's shared settings.
PAPER_NETS = dict(g_width=64, d_width=64, g_refine=32, d_layers=3)
COMMON = dict(batch_size=64, ema=0.999, lr_decay_from=1.0, class_weight_d=1.0, class_weight_g=1.0)
# `fast` on a 2-core CPU: networks a quarter of the paper's cost, one critic step per generator
# step. Measured in bench/bench_quality.py; docs/method.md gives the figures.
FAST_NETS = dict(g_width=32, d_width=32, g_refine=0, d_layers=2)


class Batch(NamedTuple):
    """Images x (B, C, H, W) or points (B, 2), and their class labels y (B,) or None."""

    x: torch.Tensor
    y: Optional[torch.Tensor] = None


class Scores(NamedTuple):
    """The critic's output for one batch: linear score (B,) in fp32, class logits (B, K) or None."""

    score: torch.Tensor
    logits: Optional[torch.Tensor]


def has_batch_norm(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


def critic_scores(D: nn.Module, real: Batch, fake: Batch) -> tuple[Scores, Scores]:
    """D on real and fake batches. Without batch norm both go through D in one call (half the
    kernel launches); with it they must not, or the fakes would change the real batch's statistics."""
    B = real.x.shape[0]
    if not has_batch_norm(D):
        score, logits = D(torch.cat([real.x, fake.x.to(real.x.dtype)]))
        score = score.float()
        split = (None, None) if logits is None else (logits[:B], logits[B:])
        return Scores(score[:B], split[0]), Scores(score[B:], split[1])
    (s_real, l_real), (s_fake, l_fake) = D(real.x), D(fake.x)
    return Scores(s_real.float(), l_real), Scores(s_fake.float(), l_fake)


class Objective:
    """Base class: subclasses set the class attributes and define the adversarial terms."""

    variant: ClassVar[str]  # the --variant name
    title: ClassVar[str]  # one line for people (UI list, model cards)
    summary: ClassVar[str]  # the method with its paper, for model cards
    constraint: ClassVar[str]  # how the critic is kept (roughly) 1-Lipschitz: gp | clip | none
    wasserstein: ClassVar[bool]  # the critic's score difference estimates W1
    conditional: ClassVar[bool] = False
    recipes: ClassVar[dict[str, dict]]  # "paper": the published recipe; "fast": best quality per CPU-minute

    # --- what config and UI read, without building anything -------------------------------
    @classmethod
    def constraints(cls) -> tuple[str, ...]:
        return (cls.constraint,)

    @classmethod
    def recipe_for(cls, constraint: str, recipe: str = "paper") -> dict:
        """Every setting `recipe` decides for this objective (TrainConfig fills the ones left None)."""
        return {**COMMON, **cls.recipes[recipe]}

    @classmethod
    def build(cls, cfg) -> "Objective":
        """The objective a TrainConfig asks for: its settings (dataclass fields) read from `cfg`."""
        return cls(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cls)})

    # --- what the trainer calls -------------------------------------------------------------
    def critic_loss(self, D: nn.Module, real: Batch, fake: Batch,
                    generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, dict]:
        """The critic's loss on one real and one (detached) fake batch, and its stats."""
        s_real, s_fake = critic_scores(D, real, fake)
        return self.critic_terms(D, real, fake, s_real, s_fake, generator)

    def generator_loss(self, D: nn.Module, fake: Batch) -> tuple[torch.Tensor, dict]:
        """The generator's loss on a fake batch that carries its graph back to G."""
        score, logits = D(fake.x)
        return self.generator_terms(fake, Scores(score.float(), logits))

    def after_critic_update(self, D: nn.Module) -> None:
        """Runs after every critic optimiser step (weight clipping lives here)."""

    def critic_terms(self, D, real: Batch, fake: Batch, s_real: Scores, s_fake: Scores,
                     generator) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def generator_terms(self, fake: Batch, s_fake: Scores) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError


@dataclass
class Wasserstein(Objective):
    """The WGAN objective (Arjovsky et al. 2017): L_D = E[D(x_fake)] - E[D(x_real)], L_G = -E[D(x_fake)].

    -L_D estimates W1 (up to the critic's Lipschitz constant); subclasses keep the critic Lipschitz."""

    wasserstein = True

    def critic_terms(self, D, real, fake, s_real, s_fake, generator):
        loss = losses.critic_loss_wgan(s_real.score, s_fake.score)
        return loss, {"wasserstein": -loss.detach(), "loss_d": loss.detach()}

    def generator_terms(self, fake, s_fake):
        loss = losses.generator_loss_wgan(s_fake.score)
        return loss, {"loss_g": loss.detach()}


@dataclass
class WGANGP(Wasserstein):
    """WGAN-GP (Gulrajani et al. 2017): the Wasserstein critic loss + lambda * GP."""

    variant = "wgan-gp"
    title = "WGAN-GP: gradient penalty"
    summary = "WGAN-GP (gradient penalty, Gulrajani et al. 2017)"
    constraint = "gp"
    # Alg. 1 and the paper's MNIST code: lambda 10, n_critic 5, Adam 1e-4 (0.5, 0.9), no critic BN.
    _paper = dict(optimizer="adam", lr=1e-4, beta1=0.5, beta2=0.9, n_critic=5, critic_warmup=False,
                  d_norm="none", **PAPER_NETS)
    recipes = {
        "paper": _paper,
        # One critic step per generator step at 5x the lr: the critic is further from optimal, so
        # -L_D is a looser bound on W1, but a CPU-minute buys over ten times the generator steps.
        # lr 5e-4 reached 95 % class accuracy (acgan) in 3,000 steps where 2e-4 had 78 %; acgan's
        # five-minute default goes further (ACGAN.fast_gp).
        "fast": {**_paper, "lr": 5e-4, "n_critic": 1, **FAST_NETS},
    }

    lambda_gp: float = 10.0

    def critic_terms(self, D, real, fake, s_real, s_fake, generator):
        loss, stats = super().critic_terms(D, real, fake, s_real, s_fake, generator)
        gp, grad_norm = losses.gradient_penalty(D, real.x, fake.x, generator=generator)
        loss = loss + self.lambda_gp * gp
        return loss, {"wasserstein": stats["wasserstein"], "gp": gp.detach(), "grad_norm": grad_norm,
                      "loss_d": loss.detach()}


@dataclass
class WGANClip(Wasserstein):
    """WGAN with weight clipping (Arjovsky et al. 2017): critic weights clipped to [-c, c]."""

    variant = "wgan"
    title = "WGAN: weight clipping"
    summary = "WGAN (weight clipping, Arjovsky et al. 2017)"
    constraint = "clip"
    # Alg. 1: c 0.01, n_critic 5, RMSprop 5e-5 (no momentum), and the reference code's 100 critic
    # steps for the first 25 generator steps and every 500th. Its DCGAN critic has batch norm.
    _paper = dict(optimizer="rmsprop", lr=5e-5, beta1=0.0, beta2=0.0, n_critic=5, critic_warmup=True,
                  d_norm="batch", **PAPER_NETS)
    recipes = {
        "paper": _paper,
        # Still the method: weights clipped to [-c, c] after every critic update, a linear critic,
        # RMSprop, no penalty. On the smaller networks, one critic step per generator step at 20x the
        # lr and no 100-step warm-up: a CPU-minute then buys ~5x the generator steps, and the
        # critic, though further from optimal, still guides G. Measured one lever at a time
        # (docs/method.md, docs/evidence.md): MNIST-FID after 2 min of one core, 6,000 with the paper's settings ->
        # 1,189 (lr 2e-4, no warm-up) -> 681 (n_critic 1) -> 451 (lr 1e-3); lr 2e-3, c 0.02, n_critic 2,
        # Adam or a critic without batch norm were each worse.
        "fast": {**_paper, "lr": 1e-3, "n_critic": 1, "critic_warmup": False, **FAST_NETS},
    }

    clip_value: float = 0.01

    def after_critic_update(self, D):
        losses.clip_weights(D, self.clip_value)


@dataclass
class BCEGAN(Objective):
    """The plain GAN baseline: BCE discriminator, non-saturating generator (Goodfellow et al. 2014)."""

    variant = "gan"
    title = "GAN: BCE baseline"
    summary = "GAN (BCE baseline with the DCGAN recipe)"
    constraint = "none"
    wasserstein = False
    _paper = dict(optimizer="adam", lr=2e-4, beta1=0.5, beta2=0.999, n_critic=1, critic_warmup=False,
                  d_norm="batch", **PAPER_NETS)  # DCGAN's: Adam 2e-4 (0.5, 0.999), one D step per G step
    recipes = {"paper": _paper, "fast": {**_paper, **FAST_NETS}}

    def critic_terms(self, D, real, fake, s_real, s_fake, generator):
        loss = losses.critic_loss_gan(s_real.score, s_fake.score)
        return loss, {"loss_d": loss.detach()}

    def generator_terms(self, fake, s_fake):
        loss = losses.generator_loss_gan(s_fake.score)
        return loss, {"loss_g": loss.detach()}


@dataclass
class ACGAN(Objective):
    """ACGAN-WGAN: a Wasserstein objective plus class terms on the critic's logits (Odena et al. 2017).

    L_D = inner L_D + w_d * CE(logits(x_real), y_real);  L_G = inner L_G + w_g * CE(logits(G(z, y)), y).
    """

    variant = "acgan"
    title = "ACGAN: class-conditional WGAN-GP"
    summary = "ACGAN (class-conditional WGAN-GP, default)"
    conditional = True
    wasserstein = True
    _INNER = {"gp": WGANGP, "clip": WGANClip}
    constraint = "gp"  # the default; --constraint clip swaps the inner objective
    # On top of the inner objective's recipe. fast: the generator's class term weighs 4x, so the
    # class shows within the few thousand steps a CPU gives in minutes.
    # No lr decay by default: its schedule depends on --iters, and a run resumed to a new --iters
    # must end exactly as a straight run would (and at lr 1e-3 it did not help; docs/method.md).
    class_recipes = {"paper": {}, "fast": dict(class_weight_g=4.0)}
    # fast with the gradient penalty: the five-minute default, chosen lever by lever with
    # bench_quality.py --levers (docs/method.md#the-five-minute-default). Batches of 32 buy 1.8x the
    # steps a minute; lr 2e-3 learns more per step and, with Adam's beta1 = 0, stays stable there;
    # a stronger critic (the third convolution, to 4x4 at 4x its width, and width 48) costs half
    # the steps and is what brings the strokes close. MNIST-FID 134 -> 35 at 10,000 samples (mean of 3 seeds).
    fast_gp = dict(lr=2e-3, beta1=0.0, batch_size=32, d_layers=3, d_width=48)

    inner: Objective
    class_weight_d: float = 1.0
    class_weight_g: float = 1.0

    @classmethod
    def constraints(cls) -> tuple[str, ...]:
        return tuple(cls._INNER)

    @classmethod
    def recipe_for(cls, constraint: str, recipe: str = "paper") -> dict:
        extra = cls.fast_gp if (recipe, constraint) == ("fast", "gp") else {}
        return {**cls._INNER[constraint].recipe_for(constraint, recipe), **cls.class_recipes[recipe], **extra}

    @classmethod
    def build(cls, cfg) -> "ACGAN":
        return cls(cls._INNER[cfg.constraint].build(cfg), cfg.class_weight_d, cfg.class_weight_g)

    def critic_terms(self, D, real, fake, s_real, s_fake, generator):
        loss, stats = self.inner.critic_terms(D, real, fake, s_real, s_fake, generator)
        cls_d = losses.class_loss(s_real.logits, real.y)
        loss = loss + self.class_weight_d * cls_d
        stats.update(class_loss_d=cls_d.detach(), loss_d=loss.detach(),
                     class_acc=(s_real.logits.argmax(1) == real.y).float().mean())
        return loss, stats

    def generator_terms(self, fake, s_fake):
        loss, stats = self.inner.generator_terms(fake, s_fake)
        cls_g = losses.class_loss(s_fake.logits, fake.y)
        loss = loss + self.class_weight_g * cls_g
        stats.update(class_loss_g=cls_g.detach(), loss_g=loss.detach(),
                     class_acc_fake=(s_fake.logits.argmax(1) == fake.y).float().mean())
        return loss, stats

    def after_critic_update(self, D):
        self.inner.after_critic_update(D)


VARIANTS: dict[str, type[Objective]] = {c.variant: c for c in (ACGAN, WGANGP, WGANClip, BCEGAN)}
# Every setting some recipe decides: TrainConfig leaves these None until its recipe fills them.
RECIPE_KEYS = tuple(sorted({k for c in VARIANTS.values() for con in c.constraints() for r in RECIPES
                            for k in c.recipe_for(con, r)}))
CONSTRAINTS = ("gp", "clip", "none")


def objective_class(variant: str) -> type[Objective]:
    return VARIANTS[variant]


def build_objective(cfg) -> Objective:
    """The objective of a TrainConfig."""
    return VARIANTS[cfg.variant].build(cfg)
