"""Test-wide settings: one compute thread (small models on a 2-core machine gain nothing from more)."""

import torch
from threadpoolctl import threadpool_limits

torch.set_num_threads(1)
threadpool_limits(1)
