"""Each method's loss against a slow loop-based reference, its views, and its special parts."""

import math

import pytest
import torch
import torch.nn.functional as F

from explorer.ssl.backbones import make_backbone
from explorer.ssl.methods import METHODS, make_method, method_choices
from explorer.ssl.methods.dino import DINO, dino_loss
from explorer.ssl.methods.jigsaw import TILES, jigsaw_permutations, shuffled_tiles
from explorer.ssl.methods.mae import MAE, mae_loss, patch_pixels, random_masking
from explorer.ssl.methods.moco import MoCo, key_group_count, moco_loss, shuffled_groups
from explorer.ssl.methods.relative_position import CENTRE, NEIGHBOURS, position_pairs
from explorer.ssl.methods.rotation import classification_loss, rotated_batch
from explorer.ssl.methods.vicreg import vicreg_loss
from explorer.ssl.patches import GRID, grid_patches


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b / (a.norm() * b.norm()))


# ---- losses against loops -------------------------------------------------------------------
def slow_moco(q, k, queue, t) -> float:
    total = 0.0
    for i in range(len(q)):
        logits = [cos(q[i], k[i]) / t] + [cos(q[i], queue[j]) / t for j in range(len(queue))]
        total += -logits[0] + math.log(sum(math.exp(v) for v in logits))
    return total / len(q)


def test_moco_loss_matches_loop_reference():
    g = gen(1)
    q, k, queue = torch.randn(5, 6, generator=g), torch.randn(5, 6, generator=g), torch.randn(9, 6, generator=g)
    assert float(moco_loss(q, k, queue, 0.2)) == pytest.approx(slow_moco(q, k, queue, 0.2), rel=1e-5)


def slow_vicreg(z1, z2, lam=25.0, mu=25.0, nu=1.0, eps=1e-4) -> float:
    b, e = z1.shape
    z1, z2 = z1.double(), z2.double()
    inv = sum(float((z1[i, j] - z2[i, j]) ** 2) for i in range(b) for j in range(e)) / (b * e)

    def var(z):
        total = 0.0
        for j in range(e):
            mean = sum(float(z[i, j]) for i in range(b)) / b
            v = sum((float(z[i, j]) - mean) ** 2 for i in range(b)) / (b - 1)
            total += max(0.0, 1 - math.sqrt(v + eps))
        return total / e

    def cov(z):
        means = [sum(float(z[i, j]) for i in range(b)) / b for j in range(e)]
        total = 0.0
        for j in range(e):
            for m in range(e):
                if j != m:
                    c = sum((float(z[i, j]) - means[j]) * (float(z[i, m]) - means[m]) for i in range(b)) / (b - 1)
                    total += c * c
        return total / e

    return lam * inv + mu * (var(z1) + var(z2)) + nu * (cov(z1) + cov(z2))


@pytest.mark.parametrize("scale", [0.3, 2.0])  # below and above the variance hinge
def test_vicreg_loss_matches_loop_reference(scale):
    g = gen(2)
    z1, z2 = torch.randn(6, 4, generator=g) * scale, torch.randn(6, 4, generator=g) * scale
    assert float(vicreg_loss(z1, z2)) == pytest.approx(slow_vicreg(z1, z2), rel=1e-5)


def slow_dino(student, teacher, center, ts, tt) -> float:
    def softmax(v):
        m = max(v)
        e = [math.exp(x - m) for x in v]
        return [x / sum(e) for x in e]

    total, pairs = 0.0, 0
    for i, t in enumerate(teacher):
        for j, s in enumerate(student):
            if i == j:
                continue
            loss = 0.0
            for row in range(len(t)):
                q = softmax([(float(t[row, k]) - float(center[0, k])) / tt for k in range(t.shape[1])])
                p = softmax([float(s[row, k]) / ts for k in range(s.shape[1])])
                loss += -sum(q[k] * math.log(p[k]) for k in range(len(q)))
            total += loss / len(t)
            pairs += 1
    return total / pairs


def test_dino_loss_matches_loop_reference():
    g = gen(3)
    student = [torch.randn(3, 5, generator=g) for _ in range(4)]
    teacher = [torch.randn(3, 5, generator=g) for _ in range(2)]
    center = torch.randn(1, 5, generator=g) * 0.1
    got = float(dino_loss(student, teacher, center, 0.1, 0.04))
    assert got == pytest.approx(slow_dino(student, teacher, center, 0.1, 0.04), rel=1e-5)


def test_mae_loss_and_patches_match_loop_reference():
    g = gen(4)
    x = torch.randn(2, 3, 8, 8, generator=g)
    patches = patch_pixels(x, 4)
    assert patches.shape == (2, 4, 48)
    for b in range(2):
        for n in range(4):
            r, c = divmod(n, 2)
            expected = x[b, :, r * 4 : r * 4 + 4, c * 4 : c * 4 + 4].permute(1, 2, 0).reshape(-1)
            assert torch.equal(patches[b, n], expected)
    prediction = torch.randn(2, 4, 48, generator=g)
    mask = torch.tensor([[1.0, 0, 1, 0], [0, 0, 0, 1]])
    total, count = 0.0, 0
    for b in range(2):
        for n in range(4):
            if mask[b, n]:
                t = patches[b, n].double()
                t = (t - t.mean()) / torch.sqrt(t.var() + 1e-6)
                total += float(((prediction[b, n].double() - t) ** 2).mean())
                count += 1
    assert float(mae_loss(prediction, patches, mask)) == pytest.approx(total / count, rel=1e-5)


def test_random_masking_hides_three_quarters_per_image():
    keep, mask = random_masking(torch.rand(3, 16, generator=gen(40)), 0.75)
    assert keep.shape == (3, 4) and mask.shape == (3, 16)
    assert torch.equal(mask.sum(dim=1), torch.full((3,), 12.0))
    assert all(mask[b, keep[b]].sum() == 0 for b in range(3))


def test_mae_masks_come_from_the_runs_generator():
    """The same seed gives the same masks and loss, whatever the global RNG did in between;
    the trainer slices views per process, so several processes see the masks one would."""
    backbone, dim = make_backbone("vit-mini", 16)
    method = MAE(backbone, dim, image_size=16)
    images = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8, generator=gen(41))
    recipe = method.recipe(16, grayscale=False)
    first = method.make_views(images, recipe, gen(42))
    torch.rand(100)  # the global RNG moves on
    again = method.make_views(images, recipe, gen(42))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert first[1].shape == (4, 16)  # one draw per patch (4 x 4 patches of 4 px)
    with torch.no_grad():
        torch.manual_seed(0)
        one = float(method.forward_loss(*first))
        torch.manual_seed(1)
        two = float(method.forward_loss(*again))
    assert one == two
    halves = method.local_views(first, 2, 4, 4)  # rank 1 of 2: images 2 and 3, their masks
    assert torch.equal(halves[1], first[1][2:4])


def test_classification_loss_matches_loop_reference():
    g = gen(5)
    logits, labels = torch.randn(4, 3, generator=g), torch.tensor([0, 2, 1, 2])
    expected = (
        sum(-math.log(math.exp(float(logits[i, labels[i]])) / float(logits[i].exp().sum())) for i in range(4)) / 4
    )
    assert float(classification_loss(logits, labels)) == pytest.approx(expected, rel=1e-5)


# ---- views ----------------------------------------------------------------------------------
def test_rotated_batch_labels_name_the_rotation():
    x = torch.randn(3, 2, 5, 5, generator=gen(6))
    turned, labels = rotated_batch(x)
    assert turned.shape == (12, 2, 5, 5) and labels.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    for row in range(12):
        r, i = divmod(row, 3)
        assert torch.equal(turned[row], torch.rot90(x[i], r, dims=(1, 2)))


def cell_image(b: int = 2, s: int = 24) -> torch.Tensor:
    """(b, 1, s, s) images whose pixels hold the number of their 3x3 grid cell (0..8)."""
    idx = torch.arange(s) * GRID // s
    cells = (idx[:, None] * GRID + idx[None, :]).float()
    return cells.expand(b, 1, s, s).clone()


def test_grid_patches_stay_inside_their_cell():
    x = cell_image(9)
    patches = grid_patches(x, torch.arange(9), 6, generator=gen(7))
    assert patches.shape == (9, 1, 6, 6)
    for k in range(9):
        assert torch.allclose(patches[k], torch.full_like(patches[k], float(k)), atol=1e-4)


def test_jittered_neighbours_keep_half_the_gap_between_them():
    """A ramp image (pixel value = its x coordinate in [-1, 1]): over many draws, the right edge of
    a left-column patch stays at least half a gap (gap 0.25 of a cell) left of the middle patch."""
    s, b = 96, 400
    ramp = torch.linspace(-1, 1, s).view(1, 1, 1, s).expand(b, 1, s, s).contiguous()
    left = grid_patches(ramp, torch.full((b,), 3), 12, generator=gen(30))
    middle = grid_patches(ramp, torch.full((b,), 4), 12, generator=gen(31))
    cell = 2.0 / GRID
    side = 0.75 * cell
    # edge pixels sample half a patch pixel inside each patch: one patch pixel more than the gap
    gap = middle[:, 0, :, 0].amin(dim=1) - left[:, 0, :, -1].amax(dim=1) - side / 12
    assert float(gap.min()) >= 0.25 * cell / 2 - 1e-3  # never closer than half the gap
    assert float(gap.max()) > 0.25 * cell * 1.3  # and the jitter does move them


def coordinate_image(b: int, s: int = 60) -> torch.Tensor:
    """(b, 2, s, s): channel 0 holds each pixel's x, channel 1 its y, in grid_sample's [-1, 1]
    coordinates (pixel centres), so a bilinearly sampled patch holds the coordinates it came from."""
    centres = (torch.arange(s) * 2 + 1) / s - 1
    return torch.stack(torch.meshgrid(centres, centres, indexing="xy")).expand(b, 2, s, s).contiguous()


def gaps(first: torch.Tensor, second: torch.Tensor, axis: int) -> torch.Tensor:
    """Empty space between patches (N, 2, p, p) of coordinates, ``second`` after ``first`` along
    ``axis`` (0: x, 1: y), in cells: the outer edges lie half a patch pixel beyond the samples."""
    pixel = PATCH_SIDE * (2.0 / GRID) / first.shape[-1]
    space = second[:, axis].flatten(1).amin(1) - first[:, axis].flatten(1).amax(1) - pixel
    return space / (2.0 / GRID)


PATCH_SIDE = 0.75  # of a cell: grid_patches' default gap 0.25
MIN_GAP = 0.25 / 2  # of a cell: each patch moves by at most a quarter of the gap


def test_relative_position_pairs_never_come_closer_than_the_minimum_gap():
    """Over 3000 draws of (centre, neighbour): along each axis where the neighbour lies beside the
    centre, at least half the gap stays empty (jitter that closed it would let edges continue)."""
    centre, neighbour, labels = position_pairs(coordinate_image(3000), 8, gen(32))
    row, col = NEIGHBOURS[labels] // GRID - 1, NEIGHBOURS[labels] % GRID - 1  # -1, 0 or 1 from the centre
    for axis, step in ((0, col), (1, row)):
        after, before = step == 1, step == -1
        space = torch.cat([gaps(centre[after], neighbour[after], axis), gaps(neighbour[before], centre[before], axis)])
        assert len(space) > 1500 and float(space.min()) >= MIN_GAP - 1e-4, float(space.min())
        assert float(space.max()) > 0.25 + 0.08  # and the jitter does move them apart (and together)
        assert float(space.min()) < 0.25 - 0.08


def test_jigsaw_tiles_never_come_closer_than_the_minimum_gap():
    """Over 500 puzzles, every pair of side-by-side tiles keeps at least half the gap empty."""
    perms = jigsaw_permutations(10)
    tiles, labels = shuffled_tiles(coordinate_image(500), 8, perms, gen(33))
    by_cell = tiles.view(500, TILES, 2, 8, 8)[torch.arange(500)[:, None], perms[labels].argsort(dim=1)]
    space = []
    for cell in range(TILES):
        if cell % GRID < GRID - 1:  # the tile to its right
            space.append(gaps(by_cell[:, cell], by_cell[:, cell + 1], 0))
        if cell < TILES - GRID:  # the tile below
            space.append(gaps(by_cell[:, cell], by_cell[:, cell + GRID], 1))
    space = torch.cat(space)
    assert len(space) == 500 * 12 and float(space.min()) >= MIN_GAP - 1e-4, float(space.min())
    assert float(space.min()) < 0.25 - 0.08 < 0.25 + 0.08 < float(space.max())


def test_position_pairs_label_the_neighbour_cell():
    centre, neighbour, labels = position_pairs(cell_image(16), 6, gen(8))
    assert torch.allclose(centre, torch.full_like(centre, float(CENTRE)), atol=1e-4)
    expected = NEIGHBOURS[labels].float().view(-1, 1, 1, 1).expand_as(neighbour)
    assert torch.allclose(neighbour, expected, atol=1e-4)


def test_shuffled_tiles_follow_their_permutation():
    perms = jigsaw_permutations(10)
    tiles, labels = shuffled_tiles(cell_image(4), 6, perms, gen(9))
    assert tiles.shape == (4 * TILES, 1, 6, 6) and labels.shape == (4,)
    values = tiles.mean(dim=(1, 2, 3)).round().long().view(4, TILES)
    assert torch.equal(values, perms[labels])


def test_jigsaw_permutations_are_distinct_and_far_apart():
    perms = jigsaw_permutations(30)
    assert perms.shape == (30, 9) and torch.equal(perms[0], torch.arange(9))
    assert all(sorted(p.tolist()) == list(range(9)) for p in perms)
    distance = (perms[:, None] != perms[None]).sum(-1) + 9 * torch.eye(30, dtype=torch.long)
    assert int(distance.min()) >= 7
    with pytest.raises(ValueError, match="permutations"):
        jigsaw_permutations(1)


# ---- method parts ---------------------------------------------------------------------------
def test_registry_lists_every_method_with_a_description():
    names = [name for name, _ in method_choices()]
    assert names == list(METHODS)
    assert set(names) == {"simclr", "moco", "byol", "vicreg", "dino", "mae", "rotation", "relative-position", "jigsaw"}
    assert all(len(text) > 20 for _, text in method_choices())


# Parts that follow the learning ones by EMA (momentum / teacher copies): no gradient, ever.
FOLLOWERS = {
    "moco": {"key_encoder", "key_projector"},
    "byol": {"target_encoder", "target_projector"},
    "dino": {"teacher_encoder", "teacher_head"},
}
# Parameters the loss cannot see, so their gradient is zero by construction (kept: the papers' heads).
LOSS_BLIND = {
    # the online projector's output bias: the predictor's first Linear feeds a BatchNorm, which
    # subtracts the batch mean, so a constant shift changes nothing downstream
    "byol": {"projector.3.bias"},
    # the expander's output bias: invariance takes z1 - z2, variance and covariance centre z
    "vicreg": {"expander.6.bias"},
}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_learning_part_gets_a_gradient_and_momentum_copies_none(name):
    """One step's loss reaches every trainable parameter with a finite gradient that is not zero
    (at least 1e-5 of the largest; float noise on a parameter the loss cannot see is ~1e-7 of it),
    and none reaches the momentum / teacher copies, which the optimiser does not get either."""
    backbone, dim = make_backbone("vit-mini" if name == "mae" else "small-cnn", 16)
    method = make_method(name, backbone, dim, image_size=16, dataset_size=64)
    images = torch.randint(0, 256, (6, 3, 16, 16), dtype=torch.uint8, generator=gen(10))
    views = method.make_views(images, method.recipe(16, grayscale=False), gen(11))
    loss = method.forward_loss(*views)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    learning = {key: p for key, p in method.named_parameters() if p.requires_grad}
    frozen = {key: p for key, p in method.named_parameters() if not p.requires_grad}
    assert {key.split(".")[0] for key in frozen} == FOLLOWERS.get(name, set())
    assert all(key.split(".")[0] not in FOLLOWERS.get(name, set()) for key in learning)
    assert {id(p) for p in method.trainable_parameters()} == {id(p) for p in learning.values()}
    assert [key for key, p in frozen.items() if p.grad is not None] == []
    missing = [key for key, p in learning.items() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert learning and not missing, f"{name}: no finite gradient reaches {missing}"
    largest = max(float(p.grad.abs().max()) for p in learning.values())
    dead = {key for key, p in learning.items() if float(p.grad.abs().max()) <= 1e-5 * largest}
    assert dead == LOSS_BLIND.get(name, set()), f"{name}: zero gradient on {dead}"


def test_moco_queue_is_a_ring_buffer():
    backbone, dim = make_backbone("small-cnn", 16)
    method = MoCo(backbone, dim, queue_size=5)
    keys = F.normalize(torch.randn(3, 128, generator=gen(12)), dim=1)
    method._enqueue(keys)
    method._enqueue(keys * -1)
    assert int(method.queue_pointer) == 1
    assert torch.allclose(method.queue[:3], torch.cat([-keys[2:], keys[1:3]]))
    assert torch.allclose(method.queue[3:], -keys[:2])


def test_moco_keys_are_normalised_in_shuffled_groups_and_return_to_their_images():
    """MoCo v1's shuffling BN on one process: each key gets the BN statistics of its random group
    alone (not of the whole batch its query was normalised with), and key i is image i's."""
    backbone, dim = make_backbone("small-cnn", 16)
    method = MoCo(backbone, dim, image_size=16)
    images = torch.randint(0, 256, (32, 3, 16, 16), dtype=torch.uint8, generator=gen(15))
    view1, view2, groups = method.make_views(images, method.recipe(16, False), gen(16))
    assert torch.equal(groups, method.make_views(images, method.recipe(16, False), gen(16))[2])  # the run's seed
    assert groups.shape == (64,) and torch.bincount(groups).tolist() == [16] * 4  # 64 keys, >= 16 a group
    assert not torch.equal(groups, groups.sort().values)  # shuffled, not the batch cut in order
    k1, k2 = method.keys(view1, view2, groups)
    keys = torch.cat([k1, k2])
    x = torch.cat([view1, view2])
    with torch.no_grad():
        for g in range(4):
            rows = [i for i in range(64) if groups[i] == g]
            alone = method.key_projector(method.key_encoder(x[rows]))  # this group's BN statistics only
            for position, i in enumerate(rows):
                torch.testing.assert_close(keys[i], alone[position], rtol=1e-4, atol=1e-5)
    whole = torch.cat(method.keys(view1, view2))  # one BN batch of all 64 keys
    assert (keys - whole).abs().max() > 1e-2
    method.forward_loss(view1, view2, groups)  # training: the B keys of view 2 join the queue
    torch.testing.assert_close(method.queue[:32], F.normalize(k2, dim=1), rtol=1e-4, atol=1e-5)
    method.eval()  # BN on running statistics: rows do not interact, so grouping changes nothing
    torch.testing.assert_close(torch.cat(method.keys(view1, view2, groups)), torch.cat(method.keys(view1, view2)))


def test_moco_key_groups_keep_at_least_sixteen_keys():
    assert [key_group_count(rows, 8) for rows in (2, 31, 32, 64, 128, 512, 4096)] == [1, 1, 2, 4, 8, 8, 8]
    groups = shuffled_groups(30, 4, gen(17))
    assert sorted(torch.bincount(groups).tolist()) == [7, 7, 8, 8]


def test_moco_loads_a_checkpoint_with_another_queue_size():
    backbone, dim = make_backbone("small-cnn", 16)
    small = MoCo(backbone, dim, queue_size=8)
    big = MoCo(make_backbone("small-cnn", 16)[0], dim, queue_size=16)
    big.load_state_dict(small.state_dict())
    assert big.queue.shape == (16, 128)


def slow_centre(center: torch.Tensor, teacher: torch.Tensor, momentum: float) -> list[float]:
    """DINO's centre update (Algorithm 1, eq. 4), one coordinate at a time: c <- m c + (1 - m) times
    the mean of the teacher outputs (2B, K) over the batch (both global crops)."""
    rows = teacher.tolist()
    return [
        momentum * c + (1 - momentum) * sum(row[k] for row in rows) / len(rows)
        for k, c in enumerate(center[0].tolist())
    ]


def test_dino_centre_is_the_momentum_mean_of_the_teacher_outputs():
    """With a centre momentum other than the default and a centre that is not zero: each training
    step's loss uses the centre as it was, then the centre becomes the EMA of the teacher outputs'
    batch mean; evaluation leaves it alone."""
    backbone, dim = make_backbone("small-cnn", 16)
    method = DINO(backbone, dim, image_size=16, out_dim=64, local_crops=2, center_momentum=0.7)
    images = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8, generator=gen(13))
    with torch.no_grad():
        method.center.copy_(torch.randn(1, 64, generator=gen(15)))
    for seed in (14, 16):  # two steps, on different views
        views = method.make_views(images, method.recipe(16, False), gen(seed))
        assert [tuple(v.shape[-2:]) for v in views] == [(16, 16)] * 2 + [(8, 8)] * 2
        before = method.center.clone()
        with torch.no_grad():  # what the step computes, in the same training mode
            teacher = method.teacher_head(method.teacher_encoder(torch.cat(views[:2])))  # (2B, K)
            student = [
                method.head(method.encoder(torch.cat(views[:2]))),
                method.head(method.encoder(torch.cat(views[2:]))),
            ]
            expected_loss = dino_loss(list(torch.cat(student).split(4)), list(teacher.split(4)), before, 0.1, 0.04)
        loss = method.forward_loss(*views)
        assert float(loss.detach()) == pytest.approx(float(expected_loss), rel=1e-5)  # the centre before this step
        assert method.center[0].tolist() == pytest.approx(slow_centre(before, teacher, 0.7), rel=1e-5, abs=1e-6)
        assert not torch.allclose(method.center, before)
    method.eval()
    kept = method.center.clone()
    with torch.no_grad():
        method.forward_loss(*views)
    assert torch.equal(method.center, kept)


def test_mae_refuses_a_cnn_backbone():
    backbone, dim = make_backbone("small-cnn", 16)
    with pytest.raises(ValueError, match="vit-mini"):
        MAE(backbone, dim, image_size=16)
