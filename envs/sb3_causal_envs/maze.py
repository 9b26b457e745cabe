"""A maze with a redundant action set: ``2 ** n_bits`` actions, most of them exact duplicates or no-ops.

The CEE paper's Maze (seed 004): an agent walks a grid maze from a start cell to a goal cell, but its
action set is blown up to ``2 ** n_bits`` actions. Every action has one of nine *effects*:

* ``noop`` (stay), half of all actions;
* ``N``, ``E``, ``S``, ``W`` (one cell), the other actions but four, split as evenly as possible;
* ``NN``, ``EE``, ``SS``, ``WW`` (two cells; one cell if the second is a wall; none if the first is),
  exactly one action each: actions with a unique effect.

Which action index carries which effect is a seeded permutation (``action_seed``), so nothing about the
classes can be read off the indices. Moves into walls stay, so the *true equivalence classes* (actions
with the same next state) depend on the cell: :meth:`RedundantActionMaze.equivalence_classes` returns
them for any cell by simulating every action, so a reduction of the action space can be checked
exactly. With ``n_bits = 6`` (64 actions) an open cell has 9 classes: 32 no-ops, 7 x 4 one-cell moves
and the 4 unique two-cell moves.

Observation: the one-hot row of the agent followed by its one-hot column (``float32``, ``height +
width`` entries). Reward: ``1 - 0.9 * t / max_steps`` on reaching the goal (MiniGrid's), 0 otherwise;
the episode terminates at the goal and is truncated after ``max_steps`` steps.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = ["DEFAULT_LAYOUT", "EFFECT_NAMES", "RedundantActionMaze"]

#: default maze: ``#`` wall, ``S`` start, ``G`` goal, ``.`` free (9 x 9 with its border)
DEFAULT_LAYOUT = (
    "#########",
    "#S..#...#",
    "#.#.#.#.#",
    "#.#...#.#",
    "#.####..#",
    "#...#.#.#",
    "##.#..#.#",
    "#.....#G#",
    "#########",
)

#: the effects of the actions, as (row, column) displacement and the number of cells moved
EFFECT_NAMES = ("noop", "N", "E", "S", "W", "NN", "EE", "SS", "WW")
_DIRECTIONS = {"N": (-1, 0), "E": (0, 1), "S": (1, 0), "W": (0, -1)}


def _effect_move(name: str) -> tuple[tuple[int, int], int]:
    if name == "noop":
        return (0, 0), 0
    return _DIRECTIONS[name[0]], len(name)


class RedundantActionMaze(gym.Env):
    """Grid maze with ``2 ** n_bits`` actions of nine effects (see the module doc).

    :param n_bits: the action set has ``2 ** n_bits`` actions (>= 4)
    :param layout: rows of the maze: ``#`` wall, ``S`` start, ``G`` goal, ``.`` free; a wall border
    :param max_steps: steps before the episode is truncated
    :param action_seed: seed of the permutation that assigns effects to action indices
    :param random_start: start each episode on a uniformly random free cell (the env's seeded generator)
        instead of ``S``: an exploration setting that covers the maze (e.g. for pre-training a mask)
    :param render_mode: ``"ansi"`` (text) or ``"rgb_array"`` (8 pixels per cell) or None
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi", "rgb_array"]}

    def __init__(
        self,
        n_bits: int = 6,
        layout: tuple[str, ...] | list[str] = DEFAULT_LAYOUT,
        max_steps: int = 100,
        action_seed: int = 0,
        random_start: bool = False,
        render_mode: str | None = None,
    ) -> None:
        if isinstance(n_bits, bool) or not isinstance(n_bits, (int, np.integer)) or n_bits < 4:
            raise ValueError(f"n_bits must be an integer >= 4 (at least 16 actions for 9 effects), got {n_bits!r}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps!r}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.render_mode = render_mode
        grid = np.array([list(row) for row in layout])
        if grid.ndim != 2 or (grid == "S").sum() != 1 or (grid == "G").sum() != 1:
            raise ValueError("layout must be equal-length rows with exactly one 'S' and one 'G'")
        border = np.concatenate([grid[0], grid[-1], grid[:, 0], grid[:, -1]])
        if not (border == "#").all():
            raise ValueError("layout must be closed by a border of walls '#'")
        self.walls = grid == "#"
        self.start = tuple(int(x) for x in np.argwhere(grid == "S")[0])
        self.goal = tuple(int(x) for x in np.argwhere(grid == "G")[0])
        self.height, self.width = grid.shape
        self.max_steps = int(max_steps)
        self.random_start = bool(random_start)
        self.n_actions = 2 ** int(n_bits)

        # effect counts: half no-ops, one action per two-cell move, the rest split over one-cell moves
        n_noop = self.n_actions // 2
        n_single = self.n_actions - n_noop - 4
        counts = [n_noop] + [n_single // 4 + (i < n_single % 4) for i in range(4)] + [1, 1, 1, 1]
        effects = np.repeat(np.arange(len(EFFECT_NAMES)), counts)
        #: effect id (index into EFFECT_NAMES) of each action
        self.action_effect = np.random.default_rng(action_seed).permutation(effects)

        self.observation_space = spaces.Box(0.0, 1.0, shape=(self.height + self.width,), dtype=np.float32)
        self.action_space = spaces.Discrete(self.n_actions)
        self.position = self.start
        self.steps = 0

    # ------------------------------------------------------------------ dynamics
    def move(self, position: tuple[int, int], action: int) -> tuple[int, int]:
        """The cell reached from ``position`` with ``action`` (walls stop the move)."""
        (dr, dc), cells = _effect_move(EFFECT_NAMES[self.action_effect[int(action)]])
        row, col = position
        for _ in range(cells):
            if self.walls[row + dr, col + dc]:
                break
            row, col = row + dr, col + dc
        return row, col

    def observation(self, position: tuple[int, int] | None = None) -> np.ndarray:
        """The observation of a cell (default: the agent's)."""
        row, col = self.position if position is None else position
        obs = np.zeros(self.height + self.width, dtype=np.float32)
        obs[row] = 1.0
        obs[self.height + col] = 1.0
        return obs

    def free_cells(self) -> list[tuple[int, int]]:
        """Every cell the agent can stand on, goal excluded (the episode ends there)."""
        return [(int(r), int(c)) for r, c in np.argwhere(~self.walls) if (r, c) != self.goal]

    def equivalence_classes(self, position: tuple[int, int] | None = None) -> list[np.ndarray]:
        """The true classes of actions at a cell: actions that lead to the same next cell, sorted by first action.

        :param position: the cell (default: the agent's)
        """
        position = self.position if position is None else position
        targets = [self.move(position, a) for a in range(self.n_actions)]
        classes: dict[tuple[int, int], list[int]] = {}
        for action, target in enumerate(targets):
            classes.setdefault(target, []).append(action)
        return sorted((np.array(members) for members in classes.values()), key=lambda m: int(m[0]))

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if self.random_start:
            cells = self.free_cells()
            self.position = cells[int(self.np_random.integers(len(cells)))]
        else:
            self.position = self.start
        self.steps = 0
        return self.observation(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        self.position = self.move(self.position, int(action))
        self.steps += 1
        terminated = self.position == self.goal
        reward = 1.0 - 0.9 * self.steps / self.max_steps if terminated else 0.0
        truncated = not terminated and self.steps >= self.max_steps
        return self.observation(), float(reward), bool(terminated), bool(truncated), {}

    def render(self) -> str | np.ndarray | None:
        if self.render_mode == "ansi":
            rows = [["#" if wall else "." for wall in row] for row in self.walls]
            rows[self.goal[0]][self.goal[1]] = "G"
            rows[self.position[0]][self.position[1]] = "A"
            return "\n".join("".join(row) for row in rows)
        if self.render_mode == "rgb_array":
            image = np.where(self.walls[..., None], 40, 230).astype(np.uint8).repeat(3, axis=2)
            image[self.goal] = (60, 180, 75)
            image[self.position] = (220, 40, 40)
            return np.kron(image, np.ones((8, 8, 1), dtype=np.uint8))
        return None
