"""The common surface of the bandit agents: env handling, the learning loop, logging, predict, save / load.

An agent holds the statistics of ``n_envs`` independent bandits at once (arrays with a leading batch axis),
so the same class plays one gymnasium env or a vector env of many independent copies (the benchmark runs
100 seeds as one ``ConfoundedBanditVectorEnv``). A subclass supplies only how arms are scored
(``_arm_scores``) and any prior it adds to the counts; everything else lives here.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback, ProgressBarCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.utils import configure_logger

__all__ = ["BanditAgent", "BanditEnvBatch", "BanditFileError", "NotReadyError"]

SelfBanditAgent = TypeVar("SelfBanditAgent", bound="BanditAgent")
_FORMAT_VERSION = 1


class NotReadyError(RuntimeError):
    """The agent was asked to act or learn before it knows its observation and action spaces."""


class BanditFileError(ValueError):
    """A saved bandit agent cannot be read (wrong file, wrong class, unknown format)."""


class BanditEnvBatch:
    """The agent's view of its env: a batch of ``num_envs`` bandits whose every step is one round.

    Wraps a single ``gym.Env`` (reset in the same step when its episode ends) or a gymnasium ``VectorEnv``
    (``SAME_STEP`` autoreset: every step is a round; ``NEXT_STEP``: the step after an episode end only
    resets that copy, so it is marked invalid and not learned from). Observations must be ``Discrete``
    (the intuition) and actions ``Discrete`` (the arm).

    :param env: a gymnasium env, a gymnasium vector env, or an env id for ``gym.make``
    """

    def __init__(self, env: gym.Env | VectorEnv | str) -> None:
        if isinstance(env, str):
            env = gym.make(env)
        self.env = env
        if isinstance(env, VectorEnv):
            self.num_envs = int(env.num_envs)
            obs_space, act_space = env.single_observation_space, env.single_action_space
            self._mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
            if self._mode == AutoresetMode.DISABLED:
                raise ValueError("vector envs with AutoresetMode.DISABLED are unsupported: use SAME_STEP or NEXT_STEP")
        elif isinstance(env, gym.Env):
            self.num_envs = 1
            obs_space, act_space = env.observation_space, env.action_space
            self._mode = None
        else:
            raise TypeError(f"env must be a gymnasium Env, a gymnasium VectorEnv or an env id, got {type(env)}")
        if not isinstance(obs_space, spaces.Discrete) or not isinstance(act_space, spaces.Discrete):
            raise ValueError(
                "a bandit agent needs a Discrete observation (the intuition) and a Discrete action (the arm); "
                f"got observation space {obs_space} and action space {act_space}"
            )
        self.n_contexts = int(obs_space.n)
        self.n_arms = int(act_space.n)
        self._obs_start = int(obs_space.start)
        self._act_start = int(act_space.start)
        self._resumed = np.ones(self.num_envs, dtype=bool)

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Reset every copy; returns the intuitions, shape ``(num_envs,)``."""
        obs, _ = self.env.reset(seed=seed)
        self._resumed[:] = True
        return np.asarray(obs, dtype=np.int64).reshape(self.num_envs) - self._obs_start

    def step(self, arms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Pull ``arms`` (one per copy). Returns the next intuitions, the rewards, which rounds count (were
        played, not an autoreset step) and the info as arrays over the copies."""
        valid = self._resumed.copy()
        if self._mode is None:
            obs, reward, terminated, truncated, info = self.env.step(int(arms[0]) + self._act_start)
            if terminated or truncated:
                obs, _ = self.env.reset()
            info = {key: np.asarray(value)[None] for key, value in info.items()}
            return np.array([obs], dtype=np.int64) - self._obs_start, np.array([reward], dtype=np.float64), valid, info
        obs, reward, terminated, truncated, info = self.env.step(arms + self._act_start)
        if self._mode == AutoresetMode.NEXT_STEP:
            self._resumed = ~(np.asarray(terminated) | np.asarray(truncated))
        info = {key: np.asarray(value) for key, value in info.items() if not key.startswith("_")}
        return np.asarray(obs, dtype=np.int64) - self._obs_start, np.asarray(reward, dtype=np.float64), valid, info


class BanditAgent:
    """Base class of the bandit agents (SB3-like: ``learn``, ``predict``, ``save`` / ``load``, seeds, logger).

    Statistics are kept per bandit copy, per context and per arm: ``successes[i, c, a]`` and
    ``pulls[i, c, a]`` (rewards in [0, 1]; their sum and count). The context is the intuition when
    ``condition_on_intuition`` is true, else a single context (the agent ignores what it sees).

    :param env: the env to learn on (gymnasium env, vector env or env id); ``None`` to attach one later
        with ``set_env`` (acting before then raises ``NotReadyError``)
    :param condition_on_intuition: keep separate statistics for each intuition (counterfactual agents)
    :param seed: seed of the agent's random draws and of the env's first reset
    :param verbose: 0 silent, 1 print the logger's tables
    :param tensorboard_log: folder for TensorBoard logs (``None``: none)
    """

    # constructor arguments saved with the agent (JSON); subclasses extend
    _hyperparameter_names: ClassVar[tuple[str, ...]] = ("condition_on_intuition",)
    _extra_arrays: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        env: gym.Env | VectorEnv | str | None = None,
        *,
        condition_on_intuition: bool = False,
        seed: int | None = None,
        verbose: int = 0,
        tensorboard_log: str | None = None,
    ) -> None:
        self.condition_on_intuition = bool(condition_on_intuition)
        self.seed = seed
        self.verbose = int(verbose)
        self.tensorboard_log = tensorboard_log
        self.rng = np.random.default_rng(seed)
        self.num_timesteps = 0
        self.n_envs = 0
        self.n_arms = 0
        self.n_intuitions = 0
        self.successes = np.zeros((0, 0, 0))
        self.pulls = np.zeros((0, 0, 0))
        self.cumulative_reward = np.zeros(0)
        self.cumulative_regret = np.zeros(0)
        self.env: BanditEnvBatch | None = None
        self._last_obs: np.ndarray | None = None
        self._env_seeded = False
        self._logger: Logger | None = None
        if env is not None:
            self.set_env(env)

    # ----------------------------------------------------------------------------------------- spaces
    @property
    def n_contexts(self) -> int:
        return self.n_intuitions if self.condition_on_intuition else 1

    def _setup_spaces(self, n_envs: int, n_intuitions: int, n_arms: int) -> None:
        """Fix the batch size and spaces, creating zeroed statistics (or checking the loaded ones fit)."""
        if n_arms < 2:
            raise ValueError(f"a bandit needs at least 2 arms, got {n_arms}")
        if self.n_arms:
            if (n_intuitions, n_arms) != (self.n_intuitions, self.n_arms):
                raise ValueError(
                    f"env has {n_intuitions} intuitions and {n_arms} arms; the agent was built for "
                    f"{self.n_intuitions} and {self.n_arms}"
                )
            if n_envs != self.n_envs:
                raise ValueError(f"env has {n_envs} copies; the agent's statistics are for {self.n_envs}")
            return
        self.n_envs, self.n_intuitions, self.n_arms = n_envs, n_intuitions, n_arms
        shape = (n_envs, self.n_contexts, n_arms)
        self.successes = np.zeros(shape)
        self.pulls = np.zeros(shape)
        self.cumulative_reward = np.zeros(n_envs)
        self.cumulative_regret = np.zeros(n_envs)
        self._on_spaces_known()

    def _on_spaces_known(self) -> None:
        """Hook for subclasses: check and shape their own state once the spaces are known."""

    def set_env(self, env: gym.Env | VectorEnv | str) -> None:
        """Attach an env (its spaces must match the agent's, if already known)."""
        batch = BanditEnvBatch(env)
        self._setup_spaces(batch.num_envs, batch.n_contexts, batch.n_arms)
        self.env = batch
        self._last_obs = None

    def get_env(self) -> BanditEnvBatch | None:
        return self.env

    def _require_spaces(self) -> None:
        if not self.n_arms:
            raise NotReadyError(
                f"{type(self).__name__} does not know its observation and action spaces yet: "
                "pass env= to the constructor or call set_env(env) before predict() or learn()"
            )

    # ----------------------------------------------------------------------------------------- acting
    def _arm_scores(self, bandits: np.ndarray, contexts: np.ndarray, intuitions: np.ndarray, deterministic: bool):
        """``(m, n_arms)`` scores of the arms for rounds of bandit copies ``bandits`` with statistics rows
        ``contexts`` and seen intuitions ``intuitions``; the highest is played."""
        raise NotImplementedError

    def _choose(self, scores: np.ndarray, deterministic: bool) -> np.ndarray:
        if deterministic:
            return np.argmax(scores, axis=1)
        best = scores == scores.max(axis=1, keepdims=True)
        return np.argmax(best * self.rng.random(scores.shape), axis=1)  # uniform among ties

    def _rows(self, intuitions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = intuitions.shape[0]
        if m == self.n_envs:
            bandits = np.arange(m)
        elif self.n_envs == 1:
            bandits = np.zeros(m, dtype=np.int64)  # one bandit's statistics serve every row
        else:
            raise ValueError(f"predict got {m} observations for an agent of {self.n_envs} bandit copies")
        contexts = intuitions if self.condition_on_intuition else np.zeros(m, dtype=np.int64)
        return bandits, contexts

    def predict(
        self,
        observation: int | np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, None]:
        """Arms for the intuitions ``observation`` (a scalar, or one per bandit copy).

        :param observation: the intuition(s)
        :param state: unused (SB3 signature)
        :param episode_start: unused (SB3 signature)
        :param deterministic: play the arm with the best estimate (no exploration bonus, no sampling)
        :return: the arm(s), shaped like ``observation``, and ``None``
        """
        self._require_spaces()
        obs = np.asarray(observation)
        intuitions = obs.reshape(-1).astype(np.int64)
        if intuitions.size == 0 or intuitions.min() < 0 or intuitions.max() >= self.n_intuitions:
            raise ValueError(f"observations must be intuitions in [0, {self.n_intuitions}), got {obs.tolist()}")
        bandits, contexts = self._rows(intuitions)
        arms = self._choose(self._arm_scores(bandits, contexts, intuitions, deterministic), deterministic)
        return arms.reshape(obs.shape), None

    # ----------------------------------------------------------------------------------------- learning
    def _update(self, intuitions: np.ndarray, arms: np.ndarray, rewards: np.ndarray, valid: np.ndarray) -> None:
        bandits, contexts = self._rows(intuitions)
        np.add.at(self.successes, (bandits[valid], contexts[valid], arms[valid]), rewards[valid])
        np.add.at(self.pulls, (bandits[valid], contexts[valid], arms[valid]), 1.0)

    @property
    def logger(self) -> Logger:
        if self._logger is None:
            self._logger = configure_logger(self.verbose, self.tensorboard_log, type(self).__name__)
        return self._logger

    def set_logger(self, logger: Logger) -> None:
        """Log to ``logger`` (e.g. ``stable_baselines3.common.logger.configure(folder, ["csv"])``)."""
        self._logger = logger

    def learn(
        self: SelfBanditAgent,
        total_timesteps: int,
        callback: BaseCallback | list[BaseCallback] | Callable | None = None,
        log_interval: int = 1000,
        tb_log_name: str | None = None,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfBanditAgent:
        """Play ``total_timesteps`` rounds summed over the bandit copies (SB3's count: a vector env of
        ``n`` copies plays ``total_timesteps / n`` rounds each), learning from every reward.

        Logged every ``log_interval`` rounds: ``rollout/mean_reward`` (over the interval),
        ``bandit/cumulative_reward``, ``bandit/cumulative_regret`` (pseudo-regret against the best
        intuition-conditioned policy, when the env reports ``info["regret"]``; means over the copies),
        ``bandit/arm_<a>`` (share of pulls in the interval) and the time keys.

        :param total_timesteps: rounds to play, over all copies
        :param callback: SB3 callback(s) or a callable ``(locals, globals) -> bool``, called every round
        :param log_interval: rounds between two logger dumps
        :param tb_log_name: TensorBoard run name (default: the class name)
        :param reset_num_timesteps: restart the timestep count (and the cumulative reward / regret)
        :param progress_bar: show a tqdm / rich progress bar
        """
        self._require_spaces()
        if self.env is None:
            raise NotReadyError(f"{type(self).__name__}.learn needs an env: pass env= or call set_env(env)")
        if total_timesteps < 1 or log_interval < 1:
            raise ValueError(f"total_timesteps and log_interval must be >= 1, got {total_timesteps}, {log_interval}")
        if tb_log_name is not None or self._logger is None:
            self._logger = configure_logger(
                self.verbose, self.tensorboard_log, tb_log_name or type(self).__name__, reset_num_timesteps
            )
        if reset_num_timesteps:
            self.num_timesteps = 0
            self.cumulative_reward[:] = 0.0
            self.cumulative_regret[:] = 0.0
        if self._last_obs is None:
            self._last_obs = self.env.reset(seed=None if self._env_seeded else self.seed)
            self._env_seeded = True
        total_timesteps += self.num_timesteps
        callback = self._init_callback(callback, progress_bar)
        callback.on_training_start(locals(), globals())
        start_time, start_steps = time.time_ns(), self.num_timesteps
        window_reward = 0.0
        window_arms = np.zeros(self.n_arms)
        rounds = 0
        while self.num_timesteps < total_timesteps:
            intuitions = self._last_obs
            arms, _ = self.predict(intuitions)
            new_obs, rewards, valid, infos = self.env.step(arms)
            self._update(intuitions, arms, rewards, valid)

            self.num_timesteps += self.n_envs
            rounds += 1
            self.cumulative_reward += rewards * valid
            if "regret" in infos:
                self.cumulative_regret += infos["regret"] * valid
            window_reward += float(rewards[valid].sum())
            window_arms += np.bincount(arms[valid], minlength=self.n_arms)
            self._last_obs = new_obs

            callback.update_locals(locals())
            if not callback.on_step():
                break
            if rounds % log_interval == 0 or self.num_timesteps >= total_timesteps:
                played = max(window_arms.sum(), 1.0)
                self.logger.record("rollout/mean_reward", window_reward / played)
                self.logger.record("bandit/cumulative_reward", float(self.cumulative_reward.mean()))
                if "regret" in infos:
                    self.logger.record("bandit/cumulative_regret", float(self.cumulative_regret.mean()))
                for arm in range(self.n_arms):
                    self.logger.record(f"bandit/arm_{arm}", float(window_arms[arm] / played))
                elapsed = max((time.time_ns() - start_time) / 1e9, 1e-9)
                self.logger.record("time/fps", int((self.num_timesteps - start_steps) / elapsed))
                self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
                self.logger.dump(step=self.num_timesteps)
                window_reward, window_arms = 0.0, np.zeros(self.n_arms)
        callback.on_training_end()
        return self

    def _init_callback(self, callback: Any, progress_bar: bool) -> BaseCallback:
        # SB3's own conversion (BaseAlgorithm._init_callback): list -> CallbackList, callable -> ConvertCallback
        if isinstance(callback, list):
            callback = CallbackList(callback)
        if not isinstance(callback, BaseCallback):
            callback = ConvertCallback(callback)
        if progress_bar:
            callback = CallbackList([callback, ProgressBarCallback()])
        callback.init_callback(self)  # type: ignore[arg-type]
        return callback

    # ----------------------------------------------------------------------------------------- save / load
    @classmethod
    def _load_kwargs(cls, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        """Constructor arguments a subclass rebuilds from its saved arrays (e.g. observational data)."""
        return {}

    def _get_hyperparameters(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._hyperparameter_names}

    def save(self, path: str | Path | io.BufferedIOBase) -> None:
        """Save to a zip (``agent.json``: class, hyperparameters, counters, random state; ``state.npz``:
        the statistics). No pickle anywhere."""
        meta = {
            "format_version": _FORMAT_VERSION,
            "class": type(self).__name__,
            "hyperparameters": self._get_hyperparameters(),
            "seed": self.seed,
            "num_timesteps": self.num_timesteps,
            "spaces": {"n_envs": self.n_envs, "n_intuitions": self.n_intuitions, "n_arms": self.n_arms},
            "rng_state": self.rng.bit_generator.state,
        }
        arrays = {"successes": self.successes, "pulls": self.pulls}
        arrays.update({name: getattr(self, name) for name in self._extra_arrays})
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        if isinstance(path, (str, Path)):
            path = Path(path)
            if path.suffix != ".zip":
                path = path.with_suffix(".zip")
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("agent.json", json.dumps(meta, indent=2))
            archive.writestr("state.npz", buffer.getvalue())

    @classmethod
    def load(
        cls: type[SelfBanditAgent], path: str | Path | io.BufferedIOBase, env: gym.Env | VectorEnv | str | None = None
    ) -> SelfBanditAgent:
        """Load an agent saved by ``save`` (of this class); attach ``env`` if given."""
        if isinstance(path, (str, Path)) and not Path(path).exists() and Path(f"{path}.zip").exists():
            path = f"{path}.zip"
        try:
            with zipfile.ZipFile(path) as archive:
                meta = json.loads(archive.read("agent.json"))
                with np.load(io.BytesIO(archive.read("state.npz")), allow_pickle=False) as npz:
                    arrays = {name: npz[name] for name in npz.files}
        except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as error:
            raise BanditFileError(f"{path} is not a saved bandit agent: {error}") from error
        if meta.get("format_version") != _FORMAT_VERSION:
            raise BanditFileError(f"{path}: unknown format version {meta.get('format_version')}")
        if meta["class"] != cls.__name__:
            raise BanditFileError(f"{path} holds a {meta['class']}, not a {cls.__name__}: call {meta['class']}.load")
        agent = cls(seed=meta["seed"], **meta["hyperparameters"], **cls._load_kwargs(arrays))
        spaces_ = meta["spaces"]
        if spaces_["n_arms"]:
            agent._setup_spaces(spaces_["n_envs"], spaces_["n_intuitions"], spaces_["n_arms"])
            for name in ("successes", "pulls", *cls._extra_arrays):
                if arrays[name].shape != getattr(agent, name).shape:
                    raise BanditFileError(f"{path}: array {name} has shape {arrays[name].shape}")
                setattr(agent, name, arrays[name].astype(np.float64))
        agent.num_timesteps = int(meta["num_timesteps"])
        agent.rng.bit_generator.state = meta["rng_state"]
        agent._env_seeded = True  # a reloaded agent does not replay its env's first seed
        if env is not None:
            agent.set_env(env)
        return agent
