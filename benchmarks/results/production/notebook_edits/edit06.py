import sys
sys.path.insert(0, "/work/runs/nb")
from nbtool import load, save, find, set_source, code, md

P = "/work/next/notebooks/06_training.ipynb"
nb = load(P)

i = find(nb, "The notebook goes through:")
s = "".join(nb["cells"][i]["source"])
s = s.replace('''7. **before and after**: bicubic, the PSNR model and GMGAN against the original, on a slider;
8. **the full run**: the commands for a GPU.''', '''7. **how the teaching recipe was found**: the pilot runs, on the perception-distortion plane;
8. **before and after**: bicubic, the PSNR model and GMGAN against the original, on a slider;
9. **the full run**: the commands for a GPU.''')
s = s.replace('''5. **two fixes** without which the GAN phase does little at teaching scale: the critic's Adam
   epsilon and the weight of the stand-in perceptual loss;''', '''5. **two fixes** without which the GAN phase does little at teaching scale: the critic's Adam
   epsilon and the weight of the stand-in perceptual loss;''')
nb["cells"][i]["source"] = [l + "\n" for l in s.split("\n")[:-1]] + [s.split("\n")[-1]]

set_source(nb, "In depth: the five departures", r'''
Where `teach` departs from the paper, and why:

:::{admonition} In depth: the seven departures
:class: dropdown

- **Size.** A 2-block, 32-feature generator (a fortieth of the paper's parameters) on 48-pixel
  patches, so that a PSNR model trains in a quarter of an hour and a GAN phase in about 40 minutes
  on one CPU thread (section 3 has the times).
- **Data.** T91 in its 8 rotations and flips, made once on disk, like the paper's augmented DIV2K.
- **Length and learning rate.** 4,000 GAN updates (the paper's schedule, ESRGAN's, is 400,000) at
  a learning rate of $2\cdot10^{-4}$, halved every 1,500 updates: twice the paper's rate, for a
  phase 2 a hundred times shorter.
- **Adversarial weight.** $\delta = 0.1$, twenty times the paper's $5\cdot10^{-3}$: with the paper's
  weight and 2,000 updates the GAN phase hardly left the PSNR model (section 7).
- **Critic.** A 16-feature critic learning at $10^{-3}$, five times the generator's rate: at the
  generator's rate such a small critic hardly separates generated from real patches.
- **Perceptual loss.** The ImageNet weights of VGG19 cannot be downloaded here, so a randomly
  initialised, seeded VGG19 stands in, at the paper's `conv5_4` (where a 48-pixel patch is 3 x 3
  feature pixels), with its weight $\beta$ balanced against $l_Q$ (section 5.2).
  `perceptual_weights="imagenet"` gives the paper's $l_P$. Random networks are known to work as
  perceptual losses {cite:p}`liu2021generic`; the deep layer drew more texture than `conv2_2` in the
  pilots (section 7).
- **Noise inputs and moving average.** In phase 2 the generator adds learned, per-channel scaled
  Gaussian noise to its features (StyleGAN's noise inputs, `noise_inject`): a generator needs a
  source of randomness to draw texture rather than its average. Its weights are averaged with
  decay 0.997 in phase 2 (0.995 in phase 1) instead of BasicSR's 0.999, so that the short phase 2
  forgets its starting point (section 6).
:::

:::{admonition} In depth: how the times are estimated
:class: dropdown

How long do the two larger presets take? `gmgan.experiments.estimate_seconds` multiplies the
number of updates by seconds per update that were **measured** for the `paper` preset on one NVIDIA
H200 (0.113 s in phase 1, 0.154 s in phase 2, fp32) and scales them by the ratio of the FLOPs of a
preset's networks. The Colab T4 column is an **estimate**: no T4 has run gmgan; it assumes that a
T4 reaches the same fraction of its peak throughput as the H200 did, which makes it 15.2 times
slower. Downloading and preparing DIV2K is not included.
:::
''')

i = find(nb, "In depth: why the live numbers can differ from the logs")
s = "".join(nb["cells"][i]["source"])
old = '''while the generator's loss terms stay within 5 %. The cell checks these bands (on an AVX-512 CPU like the
one that trained them the numbers are identical) and prints the numbers, which the tests do not compare digit by digit.'''
assert old in s
s = s.replace(old, '''while the generator's loss terms stay within 5 %. The cell checks these bands and prints the
numbers, which the tests do not compare digit by digit. (The PSNR models were trained on an AVX-512
CPU, the GAN runs on an AVX2 one; on the kind of CPU that wrote a log, the live run repeats it.)''')
nb["cells"][i]["source"] = [l + "\n" for l in s.split("\n")[:-1]] + [s.split("\n")[-1]]

set_source(nb, "Every model of notebooks 06 to 09 was trained once, with the command", r'''
## 3. The shipped teaching models

Every model of notebooks 06 to 09 was trained once and ships with the package: the moving-average
generator as a small safetensors file, its configuration, the training log and the validation
scores. One command trains them all again (two runs at a time, one CPU thread each; the GAN runs
of the shipped models were started one by one and resumed across sessions, with the same
configurations):

```bash
gmgan teaching-models train --jobs 2 --export gmgan/teaching_models
```

`gmgan.experiments.teaching_run(variant, seed=s)` finds a model by its configuration and loads it;
a changed configuration, or `retrain=True` (`papermill ... -p retrain true`), trains into
`GMGAN_DERIVED` instead. Every comparison of the book uses three seeds of each model. This notebook
needs the PSNR models (phase 1) and the GMGAN models (phase 2, each from the PSNR model of its
seed):
''')

i = find(nb, "### 5.2 The weight of the stand-in perceptual loss")
s = "".join(nb["cells"][i]["source"])
old = '''weakly: at $\\beta = 1$ its $l_P$ is tens of times smaller than $l_Q$ (the `[gan]` line of section 2
prints both), and phase 2 would in effect drop it.'''
assert old in s, s
s = s.replace(old, '''weakly, and at `conv5_4` very weakly: at $\\beta = 1$ its $l_P$ is thousands of times smaller
than $l_Q$ (the `[gan]` line of section 2 prints both), and phase 2 would in effect drop it.''')
nb["cells"][i]["source"] = [l + "\n" for l in s.split("\n")[:-1]] + [s.split("\n")[-1]]

set_source(nb, "## 6. The moving average and the raw weights", r'''
## 6. The moving average and the raw weights

The trainer keeps two generators: the raw weights $\theta$ that Adam updates, and their exponential
moving average $\bar\theta \leftarrow d\,\bar\theta + (1 - d)\,\theta$ after every update. The paper
does not mention one; the averaging, with $d = 0.999$, comes from BasicSR's ESRGAN configurations
{cite:p}`wang2022basicsr`, and every model of the book's tables is the average. In phase 2 of
`teach`, $d = 0.997$: it averages over roughly the last 330 updates, and after the 4,000 updates
it keeps $0.997^{4000} \approx 0.0006\,\%$ of the phase-1 weights ($0.999^{4000} \approx 1.8\,\%$
would keep a trace of the PSNR model, and average the drawn texture over a longer stretch). The
raw generator of `gmgan-s0` ships too; at the end of each phase the trainer scored both:
''')

i = find(nb, "## 7. Before and after")
nb["cells"][i:i] = [
md(r'''
DRAFT crops paragraph (section 6)
'''),
md(r'''
## 7. How the teaching recipe was found

The first teaching recipe kept the paper's weights: $\delta = 5\cdot10^{-3}$, $l_P$ at `conv2_2`,
2,000 GAN updates. Its GMGAN could hardly be told from its PSNR model, by eye or by score. Pilot
runs from `psnr-s0` then changed one lever at a time, each scored on the first 30 or all 100
BSD100 images and on Set5 by `benchmarks.natural_pilot` (records in
`benchmarks/results/natural_pilot`, shipped as `gmgan.teaching_scores.load_pilots`). Texture is
the HF ratio (`gmgan.metrics.hf_ratio`: the luminance's power above a quarter of the Nyquist
frequency, relative to the original's, median over the images; notebook 10 shows why it measures
texture); naturalness is NIQE (lower is better).
'''),
code('''
pilots = load_pilots()
# the moving average at the end of each run (the figure has every checkpoint and the raw
# generators)
last = {}
for p in pilots:
    key = (p["source"].startswith("production"), p["run"], p["images"])
    if p["model"].startswith(("gan/G_ema", "pretrain")) and (
        key not in last or p["updates"] > last[key]["updates"]
    ):
        last[key] = p
rows = [(p["run"], f"{p['updates']:,}", p["images"], f"{p['hf_median']:.2f}",
         f"{p['niqe_mean']:.2f}", f"{p['psnr_set5']:.2f}", f"{p['colour_max_abs']:.2f}",
         describe_recipe(p["recipe"]))
        for p in last.values()]
display(viz.markdown_table(
    ["run", "updates", "BSD100 images", "HF ratio", "NIQE", "Set5 PSNR (dB)",
     "colour", "what differed from the teach preset of the time"], rows))
''', tags=["hide-input"]),
code('''
fig = viz.plot_pilots(pilots)
''', tags=["hide-input"]),
md(r'''
Each row is a run's moving average at its end (colour: the largest mean offset of a channel on
Set5, grey levels). The figure has every scored checkpoint, and the raw generators beside the
moving averages. What the pilots taught, in the order they were run:

- **The old recipe barely moved.** Its GMGAN (the paper's $\delta$, `conv2_2`, 2,000 updates) had
  an HF ratio of 0.21 on all 100 images against the PSNR model's 0.16, and a NIQE of 7.33 against
  7.46.
- **Noise inputs, `conv5_4` and twice the learning rate**, with $\delta = 0.02$: an HF ratio of
  0.31 and NIQE 6.65 after 2,249 updates (30 images), at 0.9 dB of Set5 PSNR. A second source of
  randomness, an 8-channel noise head at the output's resolution, drew noise rather than
  texture (NIQE 8.63 after 600 updates) and was dropped.
- **$\delta = 0.1$** took the largest step: NIQE 5.49 after 1,497 updates. Texture kept growing
  with length, an HF ratio of 0.39 at 2,100, 0.44 at 3,000 and 0.49 at 4,000 updates, while NIQE
  stayed near 5.2 and the Set5 PSNR fell to 28.41 dB: the perception-distortion trade-off,
  walked by one run.
- **The moving average** of the pilots (decay 0.999) lagged behind the raw generator (an HF ratio
  of 0.55 at 4,000 updates, in the figure); the shipped models average with 0.997.

The shipped recipe is that last pilot with the shorter average, trained with three seeds (the
stars). Their NIQE spreads over 1.2 from seed to seed, as much as the step from $\delta = 0.02$
to $\delta = 0.1$ in the pilots: with one seed each, the pilots could tell levers apart only where
the effect was large, and notebook 07 tests the recipe over the seeds.
'''),
]
s_i = find(nb, "## 7. Before and after")
s = "".join(nb["cells"][s_i]["source"]).replace("## 7. Before and after", "## 8. Before and after")
nb["cells"][s_i]["source"] = [l + "\n" for l in s.split("\n")[:-1]] + [s.split("\n")[-1]]
s_i = find(nb, "## 8. The full run")
s = "".join(nb["cells"][s_i]["source"]).replace("## 8. The full run", "## 9. The full run")
nb["cells"][s_i]["source"] = [l + "\n" for l in s.split("\n")[:-1]] + [s.split("\n")[-1]]

i = find(nb, "from gmgan.training import messages_to")
s = "".join(nb["cells"][i]["source"])
s = s.replace("from gmgan.metric_table import get_metric\n",
              "from gmgan.metric_table import get_metric\n"
              "from gmgan.teaching_scores import describe_recipe, load_pilots\n")
nb["cells"][i]["source"] = [l + "\n" for l in s.split("\n")[:-1]] + [s.split("\n")[-1]]
save(nb, P)
print("ok")

# ---- after the first draft run ------------------------------------------------------------
nb = load(P)
set_source(nb, "DRAFT crops paragraph (section 6)", r'''
The PSNR model smooths the baboon's fur into soft blobs. Both GMGAN generators draw grain,
strands and specks of light and dark where the fur is: texture of the right kind, though not the
original's hairs, which the LR image no longer holds; a 2-block network guesses texture from
12 x 12 LR pixels, it does not recover it. With decay 0.997 the moving average stays close to
the raw generator (the table above: 0.02 dB and 0.11 in NIQE apart on Set5): it smooths the
updates' jitter, not the texture.
''')
i = find(nb, "A Wasserstein estimate above zero means that the critic scores real patches higher")
s = "".join(nb["cells"][i]["source"]).rstrip("\n") + (
    " Here it rises above zero within the first thousand updates on every seed and stays"
    " there: the critic keeps telling generated patches from real ones, and keeps pushing"
    " the generator.")
nb["cells"][i]["source"] = [l + "\n" for l in s.split("\n")[:-1]] + [s.split("\n")[-1]]
i = find(nb, "## Exercises")
s = "".join(nb["cells"][i]["source"])
old_summary = s[s.index("## Summary"):s.index("## Exercises")]
s = s.replace(old_summary, r'''## Summary

- One trainer, `gmgan.train.train`, runs both phases at every scale; a live run of the `teach`
  preset repeats the first updates of the shipped teaching models from their configuration.
- The teaching models (3 seeds of the PSNR model and of GMGAN) were trained once on a CPU and ship
  with the package, with their logs: every loss term, the validation scores over both phases and
  the critic's Wasserstein estimate, which stays above zero through phase 2.
- Weighting the critic's loss by $\delta$ leaves most of its gradients below Adam's $\epsilon$
  (83 % of the paper-size critic's); `critic_optimizer` scales $\epsilon$ by $\delta$, which
  restores the unweighted critic's steps exactly.
- A random VGG19 stands in for the ImageNet network offline; its weight is set so that
  $\beta\,l_P = l_Q$ at the start of phase 2 ($\beta$ about 1,800 to 3,200 at `conv5_4`).
- The teaching recipe was found by pilots: the paper's weights on a 2-block network and 2,000
  updates drew almost no texture (HF ratio 0.21 against the PSNR model's 0.16); noise inputs,
  `conv5_4`, $\delta = 0.1$ and 4,000 updates raise it to 0.52-0.56 on the three shipped seeds,
  at 2.0-2.7 dB of Set5 PSNR (notebook 07), and GMGAN now draws fur where the PSNR model blurs it.

''')
s = s.replace("`teach.gan_lr` ($10^{-4}$)", r"`teach.gan_lr` ($2\cdot10^{-4}$)")
nb["cells"][i]["source"] = [l + "\n" for l in s.split("\n")[:-1]] + [s.split("\n")[-1]]
save(nb, P)
print("ok2")
