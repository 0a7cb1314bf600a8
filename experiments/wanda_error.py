"""Wanda's diagonal proxy against the true layer-output error, beside magnitude, on oneshot_calibrated's setting.

Wanda keeps, in every output row, the weights with the largest |W_ij| ||X_j||: that minimises the diagonal
proxy sum_ij dW_ij^2 ||X_j||^2 of the error it makes in the layer's output, dW the pruned weights. The true
error is ||X dW^T||^2, which adds the cross terms sum_{j != k} dW_ij dW_ik <X_j, X_k>. For fc1 and fc2 of
the dense LeNet-300-100 of `+experiment=oneshot_calibrated` (8 epochs, from the store's dense cache,
trained there if missing) and each target, this prints both per calibration sample (the preset's 128
training images), each layer pruned alone on the dense model's inputs, for Wanda and for magnitude at the
same per-row sparsity (scope row), the true error's part from the shift of the layer's mean output,
||dW mean(X)||^2, and the true error on the held-out validation images; then, with both layers pruned,
the squared error of the logits against the dense model's, the share of it that only rescales each image's
dense logits, the rest, and the validation accuracy right after pruning (acc_before_ft), Wanda also
sequential (the preset's default). Mean over seeds.

    python experiments/wanda_error.py [--seeds 0 1 2] [--targets 0.5 0.7 0.9] [--store outputs/store]
"""

import argparse
import tempfile
from functools import partial
from importlib import resources

import pandas as pd
import torch
from hydra import compose, initialize_config_dir

from prunelab.config import build
from prunelab.pruning.calibration import capture, input_matrix, owners
from prunelab.pruning.criteria import ScoreContext
from prunelab.pruning.masks import apply_masks, full_masks
from prunelab.pruning.select import select
from prunelab.pruning.wanda import wanda_scores
from prunelab.runs import cache
from prunelab.runs.run import load_dense, train_dense
from prunelab.runs.spec import from_config
from prunelab.training.callback import top1_accuracy


def dense_setting(seed: int, store: str):
    """The dense model, datamodule and Wanda pruner (sequential) of the preset's run for `seed`."""
    with initialize_config_dir(str(resources.files("prunelab.conf")), version_base="1.3"):
        cfg = compose("config", overrides=["+experiment=oneshot_calibrated", "pruning=wanda", f"seed={seed}",
                                           f"store_dir={store}", "logger=none"])
    with tempfile.TemporaryDirectory() as folder:
        spec = from_config(cfg, folder)
        checkpoint = cache.dense_checkpoint(spec, partial(train_dense, spec))
    model = build(spec.config["model"])
    load_dense(model, str(checkpoint))
    datamodule = build(spec.config["dataset"])
    datamodule.setup("fit")
    return model, datamodule, build(spec.config["pruning"])


def layer_inputs(model, params, batches) -> dict[str, torch.Tensor]:
    """Each layer's calibration inputs (rows: samples) from the dense model."""
    inputs: dict[str, list] = {}
    capture(model, owners(model, params), batches, lambda n, layer, x: inputs.setdefault(n, []).append(
        input_matrix(layer, x)))
    return {n: torch.cat(x).double() for n, x in inputs.items()}


def errors(w: torch.Tensor, keep: torch.Tensor, x: torch.Tensor, held_out: torch.Tensor) -> dict[str, float]:
    """Per sample: the diagonal proxy, the true output error, its part from the shift of the mean output, and the
    true error on held-out inputs."""
    dw = (w.double() * ~keep).T  # (in, out): the pruned weights
    proxy = float((dw.pow(2) * x.pow(2).sum(0, keepdim=True).T).sum()) / len(x)
    true = float((x @ dw).pow(2).sum()) / len(x)
    shift = float((x.mean(0, keepdim=True) @ dw).pow(2).sum())  # ||dW mean(X)||^2
    return {"proxy": proxy, "true": true, "shift": shift, "held_out": float((held_out @ dw).pow(2).sum()) / len(held_out)}


def logit_errors(pruned: torch.Tensor, dense: torch.Tensor) -> dict[str, float]:
    """Per image: the squared logit error, the share of it along the image's own dense logits (a rescaling of
    them, which keeps the predicted class while it shrinks them), and the rest (what can change the class).
    Logits are centred over the classes first: a shift common to every class changes no prediction."""
    error = pruned - dense
    error, own = error - error.mean(1, keepdim=True), dense - dense.mean(1, keepdim=True)
    along = (error * own).sum(1).pow(2) / own.pow(2).sum(1)
    total = error.pow(2).sum(1)
    return {"logit_error": float(total.mean()), "along_dense": float(along.sum() / total.sum()),
            "across": float((total - along).mean())}


def measure(seed: int, targets: list[float], store: str) -> tuple[list[dict], list[dict]]:
    model, datamodule, wanda = dense_setting(seed, store)
    params = wanda.parameters(model)
    ctx = ScoreContext(batches=datamodule.train_dataloader, loss=None, generator=torch.Generator().manual_seed(0))
    batches = wanda.calibration.inputs(ctx, torch.device("cpu"))
    val = [x for x, _ in datamodule.val_dataloader()]
    x, x_val = layer_inputs(model, params, batches), layer_inputs(model, params, val)
    with torch.no_grad():
        logits = torch.cat([model(v) for v in val])
    scores = {"magnitude": {n: p.detach().abs() for n, p in params.items()},
              "wanda": wanda_scores(model, params, batches)}
    drawn = ScoreContext(batches=lambda: [(b, None) for b in batches], loss=None, generator=ctx.generator)
    dense = {k: v.clone() for k, v in model.state_dict().items()}
    rows, nets = [], []

    def network(method, target):
        with torch.no_grad():
            nets.append({"seed": seed, "target": target, "method": method,
                         **logit_errors(torch.cat([model(v) for v in val]), logits),
                         "acc": 100 * top1_accuracy(model, datamodule.val_dataloader())["acc"]})
        model.load_state_dict(dense)

    for target in targets:
        for method, s in scores.items():
            masks = select(s, full_masks(params), target, "row")
            for name, keep in masks.items():
                rows.append({"seed": seed, "target": target, "layer": name, "method": method,
                             **errors(params[name].detach(), keep, x[name], x_val[name])})
            apply_masks(list(params.values()), list(masks.values()))
            network(method, target)
        wanda.prune(model, full_masks(params), target, drawn)  # sequential, on the same 128 samples
        network("wanda (sequential)", target)
    return rows, nets


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--targets", type=float, nargs="+", default=[0.5, 0.7, 0.9])
    parser.add_argument("--store", default="outputs/store")
    args = parser.parse_args(argv)
    rows, nets = [], []
    for seed in args.seeds:
        r, a = measure(seed, args.targets, args.store)
        rows += r
        nets += a
    pd.set_option("display.width", 200)
    layers = pd.DataFrame(rows).groupby(["target", "layer", "method"])[["proxy", "true", "shift", "held_out"]].mean()
    print(f"Layer-output error per sample, mean over seeds {args.seeds}; each layer pruned alone (per row) on the"
          " dense model's inputs:\n  proxy = sum dW^2 ||X_j||^2 / n, true = ||X dW^T||^2 / n (the calibration inputs),"
          " shift = ||dW mean(X)||^2, held_out = true on the validation images")
    print(layers.round(2).to_string())
    net = pd.DataFrame(nets).groupby(["target", "method"])[["logit_error", "along_dense", "across", "acc"]].agg(
        ["mean", "std"])
    print("\nBoth layers pruned, on the validation images: the squared logit error against the dense model (logits"
          " centred over the classes), its share along the image's own dense logits, the rest (across), accuracy (%):")
    print(net.round(2).to_string())


if __name__ == "__main__":
    main()
