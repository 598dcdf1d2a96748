"""The analyses beyond single maps — sanity checks, attacks and dataset debugging — with where they live in the
app and the paper each follows. Explainers and metrics list themselves from their registries; these do not have
one, so the Methods page reads this list."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Analysis:
    title: str
    page: str
    summary: str
    reference: str


ANALYSES: tuple[Analysis, ...] = (
    Analysis("Model randomisation", "Sanity checks",
             "Randomise the weights layer by layer from the top; a map that does not change is not explaining the model.",
             "Adebayo et al. 2018, 'Sanity Checks for Saliency Maps', NeurIPS, arXiv:1810.03292"),
    Analysis("Data randomisation", "Debugging lab",
             "Train the same network on shuffled labels; its maps should not look like the real model's.",
             "Adebayo et al. 2018, 'Sanity Checks for Saliency Maps', NeurIPS, arXiv:1810.03292"),
    Analysis("Explanation attack", "Sanity checks",
             "An imperceptible input change that keeps the prediction and moves the map to a chosen target; softplus "
             "smoothing as the defence.",
             "Dombrowski et al. 2019, 'Explanations can be manipulated and geometry is to blame', NeurIPS, "
             "arXiv:1906.07983"),
    Analysis("Model manipulation", "Debugging lab",
             "Fine-tune a model so Grad-CAM points at a corner while accuracy stays.",
             "Heo, Joo & Moon 2019, 'Fooling Neural Network Interpretations via Adversarial Model Manipulation', "
             "NeurIPS, arXiv:1902.02041"),
    Analysis("SpRAy", "Debugging lab",
             "Cluster a class's heatmaps spectrally to find the strategies a model uses, Clever Hans ones included.",
             "Lapuschkin et al. 2019, 'Unmasking Clever Hans predictors and assessing what machines really learn', "
             "Nature Communications, arXiv:1902.10178"),
    Analysis("ROAR", "Debugging lab",
             "Remove each image's top-ranked pixels, retrain from scratch, and compare accuracy with a random ranking.",
             "Hooker, Erhan, Kindermans & Kim 2019, 'A Benchmark for Interpretability Methods in Deep Neural "
             "Networks', NeurIPS, arXiv:1806.10758"),
    Analysis("Influence functions, RelatIF, TracIn", "Debugging lab",
             "Which training images helped or hurt one prediction, through the last layer.",
             "Koh & Liang 2017, arXiv:1703.04730; Barshan et al. 2020 (RelatIF), arXiv:2003.11630; Pruthi et al. "
             "2020 (TracIn), arXiv:2002.08484"),
    Analysis("ImageNet-W watermark", "Debugging lab",
             "A translucent text watermark raises ImageNet models' 'carton' class: a real Clever Hans shortcut.",
             "Li et al. 2023, 'A Whac-A-Mole Dilemma: Shortcuts Come in Multiples Where Mitigating One Amplifies "
             "Others', CVPR, arXiv:2212.04825"),
)
