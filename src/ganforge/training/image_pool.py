"""A history of generated images for the discriminator (Shrivastava et al., 2017; CycleGAN).

The discriminator is updated on a mix of the newest fakes and fakes from earlier steps, so
it keeps penalising what the generator used to do and the two networks oscillate less.
For each new image, in batch order: while the pool holds fewer than ``size`` images, store
it and pass it on; afterwards, with probability 1/2 pass on a uniformly chosen stored image
and put the new one in its place, otherwise pass the new image on unchanged.

Every random draw comes from one ``torch.Generator`` (checkpointed by the recipe), two
draws per image whatever the outcome, and the stored images are part of
:meth:`ImagePool.state_dict`, so a resumed run makes the same choices.
"""

from __future__ import annotations

import torch

#: Probability of answering with a stored image once the pool is full (the reference's 0.5).
SWAP_PROBABILITY = 0.5


class ImagePool:
    """Up to ``size`` past images ``[C, H, W]``; ``size = 0`` turns the pool off.

    Args:
        size: capacity (CycleGAN's 50).
        generator: the random stream of the swap decisions (a CPU generator: the decisions
            are taken on the host, so no device sync is needed).
    """

    def __init__(self, size: int = 50, generator: torch.Generator | None = None) -> None:
        if size < 0:
            raise ValueError(f"an image pool's size must be >= 0, got {size}")
        self.size = size
        self.generator = generator
        self.images: torch.Tensor | None = None  # [count, C, H, W] (allocated to `size` rows lazily)
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """The images ``[N, C, H, W]`` the discriminator sees for the new (detached) ``images``."""
        images = images.detach()
        if self.size == 0:
            return images
        n = len(images)
        coins = torch.rand(n, generator=self.generator).tolist()
        slots = torch.randint(self.size, (n,), generator=self.generator).tolist()
        if self.images is None:
            self.images = images.new_empty((self.size, *images.shape[1:]))
        out = []
        for image, coin, slot in zip(images, coins, slots):
            if self.count < self.size:
                self.images[self.count] = image
                self.count += 1
                out.append(image)
            elif coin < SWAP_PROBABILITY:
                out.append(self.images[slot].clone())
                self.images[slot] = image
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, object]:
        """The stored images (``[count, C, H, W]`` on the CPU) and the capacity."""
        stored = torch.empty(0) if self.images is None else self.images[: self.count].cpu().clone()
        return {"size": self.size, "images": stored}

    def load_state_dict(self, state: dict[str, object], device: torch.device | str = "cpu") -> None:
        images = state["images"]
        assert isinstance(images, torch.Tensor)
        if int(state["size"]) != self.size:  # type: ignore[call-overload]
            raise ValueError(f"the checkpoint's image pool holds up to {state['size']} images, this one {self.size}")
        self.count = len(images)
        self.images = None
        if self.count:
            self.images = images.new_empty((self.size, *images.shape[1:]), device=device)
            self.images[: self.count] = images.to(device)
