"""A synthetic x4 super-resolution task whose MSE-optimal answer is known exactly.

On natural images at CPU scale every effect of the GAN and of l_Q is small and its
"right answer" unknown. Here the HR images are built so that the perception-distortion
trade-off is exact:

    HR = structure + texture        (float RGB in [0, 1], N x 3 x n x n, n = 64)

hard-edged shapes plus a stationary Gaussian texture of known spectrum, degraded by
MATLAB's bicubic x1/4 with periodic borders. The modules:

* :mod:`~gmgan.synthetic.degradation`: the degradation, linear and diagonal per group
  of aliased frequencies;
* :mod:`~gmgan.synthetic.texture`: the texture's spectrum, its exact MMSE (Wiener)
  estimate, MSE, W2 distance and the distortion-perception bound;
* :mod:`~gmgan.synthetic.task`: the images (:class:`SyntheticSRTask`) and a stream of
  training patches (:class:`TrainingStream`);
* :mod:`~gmgan.synthetic.models`: a small generator that corrects bicubic interpolation,
  an HR noise head, a critic, network interpolation, fp16 weight files;
* :mod:`~gmgan.synthetic.training`: the training loop, the recipe of the shipped models
  (PSNR model, GAN, GAN without l_Q per seed) and their files;
* :mod:`~gmgan.synthetic.measures`: scores on held-out images (texture energy, edges,
  spectral W2) and paired statistics over seeds and images.

Units: pixel values on the [0, 1] scale; MSE per pixel and channel; W2 per pixel.
"""

from gmgan.synthetic.degradation import (
    SCALE,
    alias_groups,
    downscale,
    downscale_matrix,
    frequency_response,
)
from gmgan.synthetic.measures import (
    EDGE_THRESHOLD,
    Scores,
    bootstrap_interval,
    edge_gms,
    score,
    spectral_w2,
    t_interval,
)
from gmgan.synthetic.models import (
    BicubicResidualSR,
    interpolate_generators,
    load_generator,
    save_generator,
    small_critic,
    small_generator,
    with_noise_head,
)
from gmgan.synthetic.task import SPLITS, SyntheticSRTask, TaskBatch, TrainingStream
from gmgan.synthetic.texture import (
    TextureBounds,
    TextureSpectrum,
    distortion_perception_bound,
    sample_texture,
    texture_bounds,
    wiener_texture,
)
from gmgan.synthetic.training import (
    MODEL_NAMES,
    Recipe,
    load_seed,
    models_for,
    save_seed,
    shipped_dir,
    train_seed,
    train_sr,
)

__all__ = [
    "EDGE_THRESHOLD",
    "MODEL_NAMES",
    "SCALE",
    "SPLITS",
    "BicubicResidualSR",
    "Recipe",
    "Scores",
    "SyntheticSRTask",
    "TaskBatch",
    "TextureBounds",
    "TextureSpectrum",
    "TrainingStream",
    "alias_groups",
    "bootstrap_interval",
    "distortion_perception_bound",
    "downscale",
    "downscale_matrix",
    "edge_gms",
    "frequency_response",
    "interpolate_generators",
    "load_generator",
    "load_seed",
    "models_for",
    "sample_texture",
    "save_generator",
    "save_seed",
    "score",
    "shipped_dir",
    "small_critic",
    "small_generator",
    "spectral_w2",
    "t_interval",
    "texture_bounds",
    "train_seed",
    "train_sr",
    "wiener_texture",
    "with_noise_head",
]
