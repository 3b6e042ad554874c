"""k-means for NCL's E-step: faiss when it is installed (the ``faiss`` extra), a vectorised torch version
otherwise. Both are deterministic for a given seed."""

from __future__ import annotations

import torch

ITERATIONS = 25  # faiss's default


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def kmeans(points: torch.Tensor, k: int, seed: int, backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster ``points`` [n, d] into ``k`` <= n clusters; returns (centroids [k, d], assignment [n] int64), on
    ``points``' device. ``backend``: "faiss", "torch", or "auto" (faiss when installed)."""
    if backend == "faiss" or (backend == "auto" and faiss_available()):
        return _faiss_kmeans(points, k, seed)
    return torch_kmeans(points, k, seed)


def _faiss_kmeans(points: torch.Tensor, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    import faiss

    data = points.detach().float().cpu().contiguous().numpy()
    model = faiss.Kmeans(data.shape[1], k, niter=ITERATIONS, seed=seed, verbose=False)
    model.train(data)
    _, nearest = model.index.search(data, 1)
    centroids = torch.from_numpy(model.centroids).to(points.device)
    return centroids, torch.from_numpy(nearest.reshape(-1)).long().to(points.device)


def torch_kmeans(
    points: torch.Tensor, k: int, seed: int, iterations: int = ITERATIONS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means from k distinct random points (a generator seeded by ``seed``); an empty cluster keeps its
    centroid. Stops early when no assignment changes."""
    points = points.detach().float()
    generator = torch.Generator().manual_seed(seed)
    start = torch.randperm(len(points), generator=generator)[:k].to(points.device)
    centroids = points[start].clone()
    squared = (points * points).sum(dim=1, keepdim=True)
    assignment = None
    for _ in range(iterations):
        distances = squared - 2 * points @ centroids.T + (centroids * centroids).sum(dim=1)
        new = distances.argmin(dim=1)
        if assignment is not None and torch.equal(new, assignment):
            break
        assignment = new
        sums = torch.zeros_like(centroids).index_add_(0, assignment, points)
        counts = torch.bincount(assignment, minlength=k).unsqueeze(1)
        centroids = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)
    distances = squared - 2 * points @ centroids.T + (centroids * centroids).sum(dim=1)
    return centroids, distances.argmin(dim=1)
