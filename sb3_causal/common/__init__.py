"""Pieces shared by the algorithms, laid out as in SB3 / sb3-contrib.

- :mod:`sb3_causal.common.maskable`: masked replay buffers and mask utilities (masked DQN);
- :mod:`sb3_causal.common.vec_env`: :class:`CausalMaskVecEnv`, the VecEnv wrapper MaskablePPO acts through;
- :mod:`sb3_causal.common.wrappers`: gym wrappers (:class:`RecordTerminalActionMask`);
- :mod:`sb3_causal.common.save_util`: the causal entries of a saved model's zip (graph, learner, mask provider).
"""
