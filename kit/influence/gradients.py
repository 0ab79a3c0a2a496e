"""Per-sample gradient features of a model's trainable linear layers, from one batched forward and backward.

For a linear layer y = x W^T + b applied to the tokens t of sample i, the gradient of sample i's own loss L_i is

    dL_i/dW = sum_t  g_it x_it^T        dL_i/db = sum_t g_it        (g_it = dL_i/dy_it)

so with the batch loss L = sum_i L_i (each L_i the mean over sample i's trained tokens) one backward pass gives
every g_it at once: the samples do not interact (rows padded on the right, causal attention, no batch norm), so
dL/dy_it = dL_i/dy_it. :class:`GradientFeatures` captures each trainable linear layer's inputs x (a forward
hook) and its outputs' gradients g (``torch.autograd.grad`` with respect to those outputs, which skips the
batch's own weight gradients), forms the per-sample weight gradients layer by layer (one batched matrix
product: the same arithmetic as a training step's weight gradient), optionally preconditions them with Adam's
moments (LESS), and projects them at once (:class:`kit.influence.projection.Projector`), so no sample's whole
gradient is ever held. The cost is about one training forward and backward per sample (measured by
``benchmarks/bench_influence.py``).

What counts as trainable: every parameter with ``requires_grad``. Parameters that live in a ``torch.nn.Linear``
(weights and biases; peft's LoRA ``lora_A``/``lora_B`` are linear layers too) are covered; any other trainable
parameter (norm weights, a trained embedding table) is left out of the features and listed in
:attr:`GradientFeatures.uncovered` (the tiny preset: its RMSNorm weights, about 0.2% of its trained weights).
A layer met with a leading dimension other than the batch's (several images per sample, anyres tiles) cannot be
split by sample: :class:`PerSampleError` is raised and the caller runs that batch one sample at a time (where
every leading dimension belongs to the one sample).
"""
from __future__ import annotations

from dataclasses import dataclass

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


class PerSampleError(RuntimeError):
    """A layer's inputs cannot be split by sample (their leading dimension is not the batch's)."""


@dataclass
class _Layer:
    name: str
    module: object
    params: list          # [(parameter name, "weight" | "bias")]


def trainable_linear_layers(model) -> tuple[list[_Layer], list[str]]:
    """``(layers, uncovered)``: the linear layers holding trainable parameters, and the trainable parameters
    outside any linear layer (by name)."""
    import torch

    layers, covered = [], set()
    for mname, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        params = []
        for kind in ("weight", "bias"):
            p = getattr(module, kind, None)
            if p is not None and p.requires_grad and id(p) not in covered:
                params.append((f"{mname}.{kind}" if mname else kind, kind))
                covered.add(id(p))
        if params:
            layers.append(_Layer(mname, module, params))
    uncovered = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in covered]
    return layers, uncovered


def sample_loss(model, inputs: dict, labels, mask_logits: bool = True):
    """``(loss, mask_logits)``: the sum over the batch of each sample's mean negative log-likelihood over its
    marked tokens (``labels``: bool like ``input_ids``), so that a sample's gradient is its own mean-loss
    gradient. Logits only where they predict a marked token when the model takes a boolean ``logits_to_keep``
    (:func:`kit.finetune.train.batch_loss`, whose per-sample mean this is, times the batch size)."""
    from kit.finetune.train import batch_loss

    loss, _, mask_logits = batch_loss(model, inputs, labels, mask_logits, reduction="sample")
    return loss * int(labels.shape[0]), mask_logits


class GradientFeatures:
    """Projected per-sample gradients of ``model``'s trainable linear layers (see the module docstring).

    ``adam``: ``{parameter name: (exp_avg, exp_avg_sq)}`` from a warm-up's AdamW, to precondition the gradients
    as LESS does (``less/data_selection/collect_grad_reps.py:111-137``): one virtual step from the saved moments,
    m' = b1 m + (1 - b1) g, v' = b2 v + (1 - b2) g^2, Gamma = m' / sqrt(v' + eps), no bias correction, the
    moments never carried from one sample to the next. ``None``: the plain (SGD) gradient, as ICONS uses for the
    pool and LESS and ICONS for the target set.
    """

    def __init__(self, model, projector, adam: dict | None = None):
        self.model = model
        self.projector = projector
        self.layers, self.uncovered = trainable_linear_layers(model)
        if not self.layers:
            raise ValueError("the model has no trainable linear layer: nothing to take gradients of (set the "
                             "parameters to train with requires_grad, or add LoRA adapters)")
        self.adam = adam
        if adam is not None:
            missing = [n for layer in self.layers for n, _ in layer.params if n not in adam]
            if missing:
                raise KeyError(f"the Adam state has no moments for {len(missing)} trained parameters, e.g. "
                               f"{missing[:3]}; was it saved by the same warm-up?")
        self._mask_logits = True
        self.n_params = sum(getattr(layer.module, kind).numel() for layer in self.layers for _, kind in layer.params)

    def info(self) -> dict:
        return {"n_params": int(self.n_params), "n_layers": len(self.layers), "uncovered": list(self.uncovered),
                "gradients": "adam" if self.adam is not None else "sgd", **self.projector.info()}

    def __call__(self, inputs: dict, labels):
        """``(features (B, dim) float32, the batch's mean per-sample loss)`` of one padded batch."""
        import torch

        B = int(labels.shape[0])
        calls: list[tuple[_Layer, object, object]] = []   # (layer, input x, output y) of every call

        def hook(layer):
            def capture(module, args, output):
                calls.append((layer, args[0].detach(), output))
            return capture

        handles = [layer.module.register_forward_hook(hook(layer)) for layer in self.layers]
        try:
            loss, self._mask_logits = sample_loss(self.model, inputs, labels, self._mask_logits)
        finally:
            for h in handles:
                h.remove()
        outputs = [y for _, _, y in calls]
        grads = torch.autograd.grad(loss, outputs, allow_unused=True)
        out = torch.zeros((B, self.projector.dim), dtype=torch.float32)
        self._project(calls, grads, B, out)
        return out, float(loss.detach()) / B

    def _project(self, calls, grads, B: int, out) -> None:
        """Sum each layer's per-sample gradients over its calls, precondition and project them into ``out``."""
        import torch

        sums: dict[str, object] = {}
        order: dict[int, _Layer] = {}
        for (layer, x, _), g in zip(calls, grads):
            if g is None:
                continue
            if x.shape[0] != B and B != 1:
                raise PerSampleError(f"layer {layer.name!r} sees a leading dimension of {x.shape[0]} for a batch of {B}")
            x3 = x.float().reshape(B, -1, x.shape[-1])
            g3 = g.detach().float().reshape(B, -1, g.shape[-1])
            for pname, kind in layer.params:
                part = torch.bmm(g3.transpose(1, 2), x3) if kind == "weight" else g3.sum(1)
                sums[pname] = sums[pname] + part if pname in sums else part
            order.setdefault(id(layer), layer)
        for layer in order.values():                   # a layer's calls are all in: precondition and project it
            for pname, _ in layer.params:
                if pname in sums:
                    self.projector.project(pname, self._precondition(pname, sums.pop(pname)), out)

    def _precondition(self, pname: str, g):
        import torch

        if self.adam is None:
            return g
        m, v = self.adam[pname]
        b1, b2 = ADAM_BETAS
        flat = g.reshape(g.shape[0], -1)
        m1 = b1 * m.reshape(1, -1) + (1 - b1) * flat
        v1 = b2 * v.reshape(1, -1) + (1 - b2) * flat * flat
        return m1 / torch.sqrt(v1 + ADAM_EPS)


def unit_rows(features):
    """Rows divided by their L2 norm (a zero row stays zero), as LESS's ``all_orig.pt`` rows
    (``collect_grad_reps.py:285-301``)."""
    import torch

    norms = features.norm(dim=1, keepdim=True)
    return features / torch.where(norms > 0, norms, torch.ones_like(norms))
