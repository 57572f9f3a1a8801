"""Bounded loss histories: memory and redraw cost stay flat however long a run goes."""
from __future__ import annotations


class Series:
    """Points (x, y) kept as at most ``capacity`` bucket means.

    When full, neighbouring buckets merge pairwise and the bucket width doubles, so a
    million appended points still occupy ``capacity`` slots and every bucket covers the
    same span of x.
    """

    def __init__(self, capacity: int = 2048):
        self.capacity = capacity - capacity % 2
        self.xs: list[float] = []
        self.ys: list[float] = []
        self.width = 1          # points per bucket
        self._count = 0         # points in the open (last) bucket
        self.total = 0          # points ever appended

    def append(self, x: float, y: float) -> None:
        self.total += 1
        if 0 < self._count < self.width:
            n = self._count
            self.xs[-1] = (self.xs[-1] * n + x) / (n + 1)
            self.ys[-1] = (self.ys[-1] * n + y) / (n + 1)
            self._count += 1
            return
        if len(self.xs) == self.capacity:
            self._merge()
        self.xs.append(x)
        self.ys.append(y)
        self._count = 1

    def _merge(self) -> None:
        xs, ys = self.xs, self.ys
        self.xs = [(xs[i] + xs[i + 1]) / 2 for i in range(0, len(xs), 2)]
        self.ys = [(ys[i] + ys[i + 1]) / 2 for i in range(0, len(ys), 2)]
        self.width *= 2
        self._count = self.width  # the last bucket is full now

    def view(self, max_points: int) -> tuple[list[float], list[float]]:
        """At most ``max_points`` points for drawing (strided bucket means)."""
        if len(self.xs) <= max_points:
            return self.xs, self.ys
        stride = -(-len(self.xs) // max_points)
        return self.xs[::stride], self.ys[::stride]

    def clear(self) -> None:
        self.__init__(self.capacity)

    def __len__(self) -> int:
        return len(self.xs)
