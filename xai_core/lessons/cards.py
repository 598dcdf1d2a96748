"""Saliency cards: per explainer, the idea, the formula, what it is sensitive to, known failure modes and the paper.

The idea, the paper and the cost come from the registry (so a new explainer has a card at once); the formula and
the two lists are written here per method id, and a method without an entry says so instead of inventing one.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..registry import ExplainerSpec, get_explainer


@dataclass(frozen=True)
class Card:
    id: str
    title: str
    idea: str
    formula: str  # LaTeX, empty when unknown
    sensitive_to: str
    failure_modes: str
    reference: str
    taxonomy: tuple[str, ...]
    cost: str


_TEXT: dict[str, tuple[str, str, str]] = {
    "gradient": (r"S(x) = \left|\frac{\partial f_c(x)}{\partial x}\right|",
                 "local slope of the score; tiny input shifts", "noisy ('shattered') maps; saturation hides features"),
    "input_x_gradient": (r"S(x) = x \odot \frac{\partial f_c(x)}{\partial x}",
                         "input intensity times slope", "dark pixels get no attribution; inherits gradient noise"),
    "integrated_gradients": (r"S_i = (x_i - x'_i)\int_0^1 \frac{\partial f_c(x' + \alpha(x - x'))}{\partial x_i}d\alpha",
                             "the choice of baseline x'; step count", "baseline-coloured pixels get zero; noisy paths"),
    "smoothgrad": (r"S(x) = \frac{1}{n}\sum_{k=1}^{n} G(x + \varepsilon_k),\ \varepsilon_k \sim \mathcal{N}(0, \sigma^2)",
                   "noise level σ and sample count", "too much noise blurs away detail; seed-dependent"),
    "guided_backprop": (r"R^{l} = \mathbb{1}[z^l > 0]\,\mathbb{1}[R^{l+1} > 0]\,R^{l+1}",
                        "image edges more than the class", "nearly class-insensitive; survives weight randomisation"),
    "gradcam": (r"L^c = \mathrm{ReLU}\Big(\sum_k \alpha_k^c A^k\Big),\ \alpha_k^c = \frac{1}{Z}\sum_{ij}"
                r"\frac{\partial y^c}{\partial A^k_{ij}}", "the layer; the ReLU", "coarse (layer resolution); "
                "saturated gradients give flat weights"),
    "gradcam_pp": (r"\alpha_k^c = \sum_{ij} w_{ij}^{kc}\,\mathrm{ReLU}\Big(\frac{\partial y^c}{\partial A^k_{ij}}\Big)",
                   "the layer; several instances of a class", "coarse; higher-order terms are approximations"),
    "cam": (r"M_c = \sum_k w_k^c A^k", "the classifier's weights on pooled features",
            "needs global pooling before one linear layer; coarse"),
    "guided_gradcam": (r"S = \mathrm{GuidedBP}(x) \odot \mathrm{up}(L^c)", "edges inside the Grad-CAM region",
                       "inherits guided backprop's class-insensitivity"),
    "scorecam": (r"L^c = \mathrm{ReLU}\Big(\sum_k s_k^c A^k\Big),\ s_k^c = f_c(x \odot \mathrm{norm}(A^k))",
                 "the layer; channel count", "slow (one forward per channel); masks can be off-distribution"),
    "occlusion": (r"S(p) = f_c(x) - f_c(x_{\setminus \mathrm{window}(p)})", "window size, stride, fill value",
                  "objects larger than the window look unimportant; fill is off-distribution"),
    "rise": (r"S = \frac{1}{N p}\sum_{i=1}^{N} P_c(x \odot M_i)\, M_i", "mask count, grid size, keep probability",
             "converges slowly; seed-dependent; masked images are off-distribution"),
    "lime": (r"\xi(x) = \arg\min_{g} \sum_z \pi_x(z)\,(f(z) - g(z))^2 + \Omega(g)", "superpixels, kernel width, "
             "samples", "different seeds give different maps; segmentation decides the answer"),
    "kernel_shap": (r"\phi = \arg\min_{\phi} \sum_z \pi_{\mathrm{SHAP}}(z)\,(f(z) - \phi_0 - \textstyle\sum_i \phi_i z_i)^2",
                    "the reference ('missing' value), superpixels", "exponential number of coalitions, sampled"),
    "meaningful_perturbation": (r"m^* = \arg\min_m \lambda_1\|1 - m\|_1 + \lambda_2 TV(m) + f_c(\Phi(x; m))",
                                "λ1, λ2, iterations, jitter", "adversarial masks without jitter and smoothness"),
    "lrp": (r"R_j = \sum_k \frac{a_j w_{jk}}{\epsilon + \sum_{0,j} a_j w_{jk}} R_k",
            "the rule chosen per layer", "needs canonized layers; rules change the map a lot"),
    "blur_ig": (r"S_i = -\int_0^{\sigma_{max}} \frac{\partial f_c(x_\sigma)}{\partial x_{\sigma,i}}"
                r"\frac{\partial x_{\sigma,i}}{\partial \sigma}d\sigma,\ x_\sigma = G_\sigma * x",
                "maximum blur σ; steps", "detail finer than the blur is all that is explained; coarse shapes survive "
                "the blur and get little"),
    "guided_ig": (r"S_i = \sum_t \frac{\partial f_c(\gamma(t))}{\partial x_i}\,\Delta\gamma_i(t),\ \gamma "
                  r"\text{ moves the smallest } |\partial f_c / \partial x_i| \text{ first}",
                  "fraction moved, maximum deviation, steps; the black baseline",
                  "dark pixels get little (black baseline); the path jumps with tiny gradient changes"),
    "xrai": (r"S(p) = \frac{1}{|R_k|}\sum_{i \in R_k} \max_{ch} \mathrm{IG}_{i},\ p \in R_k = s_{j_k} \setminus "
             r"\textstyle\bigcup_{l<k} R_l", "segmentation scales and dilation; IG steps and baselines",
             "regions follow colour edges, not the model; small objects merge into larger segments"),
}


def card(spec: ExplainerSpec | str) -> Card:
    """The card of an explainer (its spec or id)."""
    spec = get_explainer(spec) if isinstance(spec, str) else spec
    formula, sensitive, failures = _TEXT.get(spec.id, ("", "not written yet", "not written yet"))
    return Card(spec.id, spec.title, spec.summary, formula, sensitive, failures, spec.reference, spec.taxonomy,
                spec.cost.text())


def taxonomy_rows(specs: list[ExplainerSpec], input_size: tuple[int, int] = (224, 224)) -> list[dict[str, object]]:
    """One row per explainer: the four taxonomy axes, passes per image and the memory it holds beyond a forward."""
    rows: list[dict[str, object]] = []
    for s in specs:
        tax = set(s.taxonomy)
        n = s.passes(None, input_size)
        rows.append({"Method": s.title, "Family": s.family,
                     "Scope": "global" if "global" in tax else "local",
                     "Access": "black-box" if "black-box" in tax else "white-box",
                     "Stage": "intrinsic" if "intrinsic" in tax else "post-hoc",
                     "Model": "agnostic" if "model-agnostic" in tax else "specific",
                     "Passes per image": n if n != float("inf") else None,
                     "Cost": s.cost.text(), "Memory": memory_text(s)})
    return rows


def memory_text(spec: ExplainerSpec) -> str:
    """What a method holds beyond one forward pass, from its cost data: a backward keeps the activations."""
    if spec.cost.backward and spec.cost.partial:
        return "activations above one layer (partial backward)"
    if spec.cost.backward:
        return "all activations (full backward), per batch item"
    return "forward only (inference mode); batch of perturbed inputs"
