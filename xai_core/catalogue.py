"""The analyses beyond single maps — sanity checks, attacks, dataset debugging and concepts (global explanations) —
with where they live in the app, their taxonomy and the paper each follows; how the sanity checks compare maps; and,
per metric, what still differs from Quantus 0.6 where the definitions otherwise match
(tests/test_quantus_agreement.py checks the agreement and these relations). Explainers and metrics list themselves
from their registries; these do not have one, so the Methods page reads this module."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Analysis:
    title: str
    page: str
    summary: str
    reference: str
    taxonomy: tuple[str, ...] = ()


ANALYSES: tuple[Analysis, ...] = (
    Analysis("Model randomisation", "Sanity checks",
             "Randomise the weights layer by layer from the top, with several seeds (3 by default); a map that does not "
             "change is not explaining the model. Verdict from the upper quartile over the seeds.",
             "Adebayo et al. 2018, 'Sanity Checks for Saliency Maps', NeurIPS, arXiv:1810.03292"),
    Analysis("Random logit", "Sanity checks",
             "Explain a randomly drawn other class of the same image, one per seed; a map that stays the same shows the "
             "image, not the class decision.",
             "Sixt, Granz & Landgraf 2020, 'When Explanations Lie: Why Many Modified BP Attributions Fail', ICML, "
             "arXiv:1912.09818 (Quantus RandomLogit)"),
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
    Analysis("CRAFT concept discovery", "Concepts",
             "Factorise (NMF) a layer's activations over crops of many images of a class into concepts; score each by "
             "gradient × input on its coefficients and show the crops where it is strongest: what the model uses, "
             "across the set, not where in one image.",
             "Fel et al. 2023, 'CRAFT: Concept Recursive Activation FacTorization for Explainability', CVPR, "
             "arXiv:2211.10154", ("global", "white-box", "post-hoc", "concept-based")),
    Analysis("CRP concept relevance and relevance maximisation", "Concepts",
             "Concept Relevance Propagation: LRP conditioned on one channel of a layer gives where that concept is "
             "relevant for the class; channels ranked by their share of the class's relevance, each shown by the crops "
             "of a set where it is most relevant (not most activating).",
             "Achtibat et al. 2023, 'From attribution maps to human-understandable explanations through Concept "
             "Relevance Propagation', Nature Machine Intelligence, arXiv:2206.03208",
             ("global", "white-box", "post-hoc", "concept-based", "propagation")),
    Analysis("P-ClArC / A-ClArC", "Concepts",
             "Remove a concept from the model: project its direction out of the layer's activations on every forward "
             "pass (P-ClArC, no retraining), or, on the lab CNN, locate the artifact in pixels and paste it onto every "
             "training image of every class, then fine-tune a copy (A-ClArC).",
             "Anders et al. 2022, 'Finding and removing Clever Hans: Using explanation methods to debug and improve "
             "deep models', Information Fusion, arXiv:1912.11425", ("global", "white-box", "model correction")),
    Analysis("TCAV", "Concepts",
             "A concept activation vector separates a layer's activations for concept examples from random ones; the "
             "TCAV score is the share of a class's images whose score rises along it, tested against random vectors "
             "(a trained linear CAV, or FastCAV: the mean difference).",
             "Kim et al. 2018, 'Interpretability Beyond Feature Attribution: Quantitative Testing with Concept "
             "Activation Vectors (TCAV)', ICML, arXiv:1711.11279", ("global", "white-box", "post-hoc", "concept-based")),
)

SIMILARITY = (
    "Sanity checks compare each map with the trained model's (or the explained class's) map by Spearman's rank "
    "correlation of |map| (the verdicts), and also signed Spearman, SSIM and HOG. Resolution: the map's own, as the "
    "explainer computed it at the model's input size (224×224 for the bundled model), before any resize to the image; "
    "nothing is resampled and |·| is taken per pixel first, so positive and negative evidence never cancel. "
    "Each randomised stage (or random class) is drawn with several seeds: cells show the median and the range; a map "
    "'depends' when the upper quartile over the seeds falls below 0.5 at some stage and is 'insensitive' when it stays "
    "at or above 0.8 with only the logits randomised. Differences from Quantus (MPRT, RandomLogit): Quantus's default "
    "similarity is SSIM on the maps as given, one seed, and its RandomLogit draws one class per call."
)

QUANTUS: dict[str, str] = {
    "deletion": "Quantus PixelFlipping: same curve with features_in_step pixels per step and a black (image minimum) "
                "baseline, but its AUC integrates only the perturbed points with dx = 1 (np.trapz); ours integrates "
                "over [0, 1] from the unperturbed image. Ours = (Quantus AUC + first trapezoid) / steps (tested).",
    "insertion": "Quantus 0.6 has no insertion curve.",
    "aopc_morf": "Quantus RegionPerturbation returns f(x) − f(x_k) for k = 1..L; our AOPC averages over k = 0..L "
                 "(Samek et al.), i.e. L/(L+1) × Quantus's mean (tested with black). Remaining: Quantus's noise is drawn "
                 "afresh at every step, ours is one seeded noise image shared by every map; Quantus's 'black' is the "
                 "image's minimum; Quantus sums partial edge patches after padding, ours averages them.",
    "aopc_lerf": "As AOPC MoRF, with the least relevant regions first (Quantus order='lerf').",
    "pointing_game": "Quantus PointingGame has no tolerance (a hit only inside the mask) and counts any tied maximum; "
                     "ours uses the first maximum and a 15 px tolerance by default. Equal at tolerance 0 (tested).",
    "iou": "Quantus TopKIntersection is the share of the top k pixels (k a pixel count, default 1000) inside the mask; "
           "ours is IoU of the top fraction (0.01–0.99 of the pixels) or of pixels ≥ 20% of the maximum with the "
           "region. With the top fraction k/N: IoU = I / (k + |region| − I), I = TopKIntersection × k (tested).",
    "relevance_mass": "Quantus RelevanceMassAccuracy sums the signed map (inside ÷ total, so a signed map can leave "
                      "[0, 1]); ours sums only the positive part, the evidence for the class. Equal on non-negative "
                      "maps (tested); different on signed ones.",
    "road_morf": "Quantus ROAD (MoRF only) returns per removal percentage whether the class is still top-1, with noise "
                 "from NumPy's global generator; ours the mean class probability over the percentages, noise seeded per "
                 "input. With noise 0 the top-1 flags are equal (tested; on one grey channel: Quantus 0.6 indexes the "
                 "broadcast C×H×W map's values as H×W pixels, which breaks on RGB). pytorch-grad-cam's "
                 "ROADMostRelevantFirst(p) keeps the map's values below its p-th percentile and returns p_after − "
                 "p_before: same imputation, equal to 1e-5 with noise 0 (tested).",
    "road_lerf": "Quantus 0.6 has no LeRF ROAD; pytorch-grad-cam's ROADLeastRelevantFirst (same imputation) agrees to "
                 "1e-5 with noise 0 (tested), as for MoRF.",
    "faithfulness_correlation": "Quantus FaithfulnessCorrelation draws subsets of single values (C×H×W features) from "
                                "NumPy's global generator and uses the image minimum as 'black'; ours draws whole "
                                "pixels (every channel) from a seeded generator, the same subsets for every map. Fed "
                                "our subsets (3 values per pixel) it agrees to 1e-5 (tested).",
    "infidelity": "Quantus Infidelity replaces square patches by a baseline and fits no scale; ours is Yeh et al.'s "
                  "noisy-baseline perturbation (Gaussian noise) with the map's best scale, Captum's infidelity(..., "
                  "normalize=True): equal to Captum given the same perturbations (relative 1e-4, tested).",
    "sensitivity_max": "Quantus MaxSensitivity draws 200 uniform perturbations of ±0.2 in input units; ours Captum's "
                       "sensitivity_max (10 draws) with the radius in [0, 1] pixel units: equal to Captum given the same "
                       "perturbations and explainer (relative 1e-5, tested).",
    "average_drop": "Quantus 0.6 has no Average Drop; torchcam's ClassificationMetric (softmax) agrees to 1e-6 (tested).",
    "confidence_increase": "Quantus 0.6 has no Increase in Confidence; torchcam's ClassificationMetric agrees (tested).",
    "sic": "Quantus 0.6 has no PIC; PAIR saliency's compute_pic_metric agrees to 1e-5 given our seeded 1% random mask "
           "and min_pred_value 0 (tested): PAIR skips images under 0.8 confidence by default, we score every image.",
    "aic": "Quantus 0.6 has no PIC; PAIR saliency's compute_pic_metric (accuracy as the prediction) agrees (tested).",
    "sparseness": "Quantus Sparseness (abs, normalised by the maximum, +1e-7) in float32; ours in float64 on the map at "
                  "the model's input size: equal to float32 resolution (tested).",
    "complexity": "Quantus Complexity (entropy of |map| shares) in float32; ours in float64: equal to float32 resolution "
                  "(tested); an all-zero map is ln n for us, NaN for Quantus.",
    "focus": "Quantus Focus scores a mosaic and its map given the target quadrants (split at H // 2, W // 2 since its PR "
             "#357); equal to 1e-6 on a non-square input (tested). Quantus leaves the mosaics to the user; ours builds "
             "them at the model's input size from the image (twice) and two images of other classes.",
}
