import torch

from trainers.augment import random_affine


def batch():
    torch.manual_seed(0)
    return torch.rand(16, 1, 28, 28)


def test_shape_and_dtype_kept():
    x = batch()
    y = random_affine(x, torch.Generator().manual_seed(0), rotate=7, scale=0.1, translate=0.1)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert not torch.equal(x, y)


def test_reproducible_with_seed():
    x = batch()
    a = random_affine(x, torch.Generator().manual_seed(5), rotate=7, scale=0.1)
    b = random_affine(x, torch.Generator().manual_seed(5), rotate=7, scale=0.1)
    c = random_affine(x, torch.Generator().manual_seed(6), rotate=7, scale=0.1)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_rotation_zero_is_identity():
    x = batch()
    assert torch.equal(random_affine(x, torch.Generator(), rotate=0), x)


def test_tiny_rotation_is_close_to_identity_and_rotation_preserves_mass():
    x = torch.zeros(4, 1, 28, 28)
    x[:, :, 10:18, 10:18] = 1.0  # a centred square stays inside the frame
    y = random_affine(x, torch.Generator().manual_seed(0), rotate=1e-4)
    assert torch.allclose(x, y, atol=1e-3)
    z = random_affine(x, torch.Generator().manual_seed(0), rotate=7)
    assert torch.allclose(z.sum((1, 2, 3)), x.sum((1, 2, 3)), rtol=0.02)
