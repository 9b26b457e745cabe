"""C-MBPO under a distribution shift: a causal world model keeps the policy off a spurious variable.

On ``SpuriousCorrelation-v0`` the reward depends on ``X`` only, while ``Z`` is a noisy copy of ``X`` in
training. C-MBPO learns the local causal graph of a transition (PC on the real buffer), fits one small
ensemble per target on its parents, trains SAC on real and imagined data, and by default hides the state
entries that are not causal ancestors of the reward from the policy. So when ``Z``'s mechanism is cut
(``near``: ``do(Z) = 0``) or flipped (``far``: ``Z' = -X'``) at test time, its policy does what it did in
training. ``--with-sac`` trains SB3's SAC on the same budget for comparison.

    python examples/cmbpo_under_shift.py [--steps 6000] [--seed 0] [--episodes 3] [--with-sac]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import gymnasium as gym
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

import sb3_causal  # noqa: F401  (registers SpuriousCorrelation-v0)
from sb3_causal.mbrl import CMBPO

SHIFTS = ("none", "near", "far")


def returns_under_shifts(model: BaseAlgorithm, episodes: int, seed: int) -> dict[str, float]:
    """Mean return of the deterministic policy with ``Z``'s mechanism intact, cut and flipped."""
    result = {}
    for shift in SHIFTS:
        env = Monitor(gym.make("SpuriousCorrelation-v0", shift=shift))
        env.reset(seed=seed)
        mean, _ = evaluate_policy(model, env, n_eval_episodes=episodes, deterministic=True)
        result[shift] = float(mean)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6000, help="env steps of training")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=3, help="evaluation episodes per shift")
    parser.add_argument("--with-sac", action="store_true", help="also train SB3's SAC on the same budget")
    args = parser.parse_args()
    torch.set_num_threads(1)

    learning_starts = min(1000, args.steps // 3)
    net = dict(net_arch=[64, 64])
    common = dict(learning_starts=learning_starts, batch_size=128, policy_kwargs=net, seed=args.seed)
    model = CMBPO(
        "MlpPolicy",
        gym.make("SpuriousCorrelation-v0"),
        gradient_steps=5,
        model_train_freq=250,
        rollout_batch_size=1000,
        rollout_schedule=(learning_starts, args.steps, 1, 3),
        structure_update_freq=max(args.steps // 4, 250),
        **common,
    )
    model.learn(args.steps)
    print(f"C-MBPO's local graph: {model.causal_graph.edges}")
    print(f"parents of the reward: {model.reward_parents}; policy sees {model.policy_mask.tolist()} of [X, Z]")
    cmbpo_returns = returns_under_shifts(model, args.episodes, args.seed)
    print("C-MBPO returns:", {k: round(v, 2) for k, v in cmbpo_returns.items()})

    if args.with_sac:
        sac = SAC("MlpPolicy", gym.make("SpuriousCorrelation-v0"), **common)
        sac.learn(args.steps)
        sac_returns = returns_under_shifts(sac, args.episodes, args.seed)
        print("SAC returns:   ", {k: round(v, 2) for k, v in sac_returns.items()})
    print("(a controller steering X to 0 gets ~19.2 under every shift; random actions ~2.5-3)")


if __name__ == "__main__":
    main()
