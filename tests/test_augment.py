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


def test_rotation_turns_a_known_pixel_counter_clockwise_by_the_drawn_angle():
    """A bright dot above the centre moves along the circle by the angle drawn, to the left for a
    positive angle (counter-clockwise, as torchvision's RandomRotation)."""
    import math

    n = 8
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 4, 14] = 1.0  # 10 px above the centre (row 14); pixel centres at +0.5
    gen = torch.Generator().manual_seed(11)
    y = random_affine(x, gen, rotate=90)
    angles = (torch.rand(n, generator=torch.Generator().manual_seed(11)) * 2 - 1) * math.radians(90)
    rows = torch.arange(28).float().view(1, 28, 1) + 0.5
    cols = torch.arange(28).float().view(1, 1, 28) + 0.5
    mass = y[:, 0].sum((1, 2))
    cy, cx = (y[:, 0] * rows).sum((1, 2)) / mass - 14, (y[:, 0] * cols).sum((1, 2)) / mass - 14
    dy, dx = 4.5 - 14, 14.5 - 14  # the dot's offset from the image centre
    want_x = dx * torch.cos(angles) + dy * torch.sin(angles)
    want_y = -dx * torch.sin(angles) + dy * torch.cos(angles)
    assert torch.allclose(cx, want_x, atol=0.6) and torch.allclose(cy, want_y, atol=0.6)
    assert ((angles > 0.2) <= (cx < -1)).all()  # positive angles move the dot to the left


def test_random_erase_blanks_one_rectangle_on_about_p_of_the_images():
    from trainers.augment import random_erase

    x = torch.ones(2000, 1, 28, 28)
    assert random_erase(x, torch.Generator(), 0.0) is x
    y = random_erase(x, torch.Generator().manual_seed(0), 0.5)
    erased = (y == 0).float()
    share = erased.mean((1, 2, 3))
    hit = share > 0
    assert 0.45 < hit.float().mean() < 0.55  # binomial sd 0.011 at 2,000 images: 4.5 sd either side
    assert share[hit].min() >= 1 / 784 and share.max() <= 0.34  # at most a third of the image
    rows, cols = erased[hit, 0].amax(2), erased[hit, 0].amax(1)  # which rows / columns it touches
    area = erased[hit, 0].sum((1, 2))
    assert torch.equal(area, rows.sum(1) * cols.sum(1))  # one solid rectangle per image
    assert torch.equal(y, random_erase(x, torch.Generator().manual_seed(0), 0.5))  # the generator decides


def test_a_recipe_without_an_erase_keeps_its_json_and_with_one_round_trips():
    from space.recipe import Recipe

    assert "erase" not in Recipe().to_dict()  # digests of recipes stored before the field stay as they were
    assert Recipe.from_dict(Recipe(erase=0.5).to_dict()).erase == 0.5
