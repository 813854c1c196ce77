"""Write your own unlearner, check it with rum's conformance kit, and use it alone and in a plan.

The unlearner below, ``uniform-forget``, shrinks the logits of the forget
items towards a uniform prediction while fine-tuning on a retain sample: a
simple, readable method, not a state-of-the-art one.

    python examples/custom_unlearner.py
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

import rum
from rum.demo import RECIPE, digits_scenario
from rum.testing import check_unlearner
from rum.unlearners import Interval


@rum.register_unlearner("uniform-forget")
class UniformForget(rum.Unlearner):
    """Push forget predictions towards uniform while fine-tuning on the retain set.

    Args:
        forget_weight: weight of the forget term (KL to the uniform
            distribution), > 0. Default 1.0.
        epochs: passes over the retain set, an int >= 1. Default 5.
        lr: SGD learning rate, > 0. Default 0.03.
        batch_size: retain mini-batch size, an int >= 1. Default 64.

    Example:
        >>> UniformForget(epochs=2)
        UniformForget(epochs=2)
    """

    tags = rum.UnlearnerTags(requires_retain=True, cost="medium", source="rum example")
    _parameter_constraints = {
        "forget_weight": [Interval(float, 0, None, closed="neither")],
        "epochs": [Interval(int, 1, None)],
        "lr": [Interval(float, 0, None, closed="neither")],
        "batch_size": [Interval(int, 1, None)],
    }

    def __init__(self, forget_weight=1.0, epochs=5, lr=0.03, batch_size=64):
        # Store the hyper-parameters unchanged; nothing else happens here.
        self.forget_weight = forget_weight
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size

    def _unlearn(self, model, forget, retain, ctx):
        # model is a private copy on ctx.device; forget/retain are read-only TensorData.
        opt = torch.optim.SGD(model.parameters(), lr=self.lr, momentum=0.9)
        ctx.start(self.epochs * retain.n_batches(self.batch_size))
        model.train()
        for _ in range(self.epochs):
            for x, y in retain.batches(self.batch_size, shuffle=True, generator=ctx.generator):
                retain_loss = F.cross_entropy(model(x), y)
                log_p = F.log_softmax(model(forget.X), dim=1)
                forget_loss = -log_p.mean(1).mean() - np.log(log_p.shape[1])  # KL(uniform || p)
                loss = retain_loss + self.forget_weight * forget_loss
                ctx.step(loss)  # progress, and a NaN guard the executor acts on
                opt.zero_grad()
                loss.backward()
                opt.step()
            # after every epoch: the retain guard checks the model here, the auto policy
            # scores it, and either may ask to stop
            if ctx.end_epoch(model):
                break
        return model

    @classmethod
    def _test_params(cls):
        return {"epochs": 3}


def main() -> None:
    # 1. The conformance kit: the same checks every built-in unlearner passes.
    print(check_unlearner(UniformForget(epochs=3)))

    sc = digits_scenario(0)
    common = dict(device="cpu", random_state=0, progress=False)
    oracle = rum.unlearn(sc.model, sc.forget, sc.retain, unlearner="retrain", **RECIPE, **common)

    def report(result, name):
        return rum.evaluate(result.model, forget_set=sc.forget, retain_set=sc.retain,
                            test_set=sc.test, reference=oracle.model, name=name)

    # 2. Alone, by its registered name (or pass the instance).
    alone = rum.unlearn(sc.model, sc.forget, sc.retain, unlearner="uniform-forget", **common)

    # 3. Inside a RUM plan: two groups built by hand (the mislabeled items and
    #    the ordinary ones), ordinary items first, with an unlearner per group.
    conf = rum.metrics.functional.true_label_confidence(
        rum.metrics.functional.predict_logits(sc.model, torch.as_tensor(sc.forget[0])),
        torch.as_tensor(sc.forget[1]),
    )
    groups = sc.mislabeled.astype(int)  # 0 = ordinary, 1 = mislabeled (more memorized)
    profile = rum.Profile.from_groups(1 - conf, np.full(len(conf), np.nan), groups)
    plan = rum.plan(profile, rum.policies.RUM({0: "noop", 1: UniformForget()}))
    print(plan)
    planned = rum.execute(plan, sc.model, sc.forget, sc.retain, profile=profile, **common)

    print(rum.EvaluationReport.table(
        [report(alone, "uniform-forget alone"), report(planned, "plan: noop + uniform-forget")],
        title="Against the retrained model (digits demo, seed 0)",
    ))


if __name__ == "__main__":
    main()
