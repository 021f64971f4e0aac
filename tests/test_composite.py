"""Compositing: perspective, occlusion order, shadows, colour matching, camera effects, determinism."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from _synthetic_site import background, person_rgba

from dataset_builder.composite import CompositeConfig, Compositor, Placement, Plan, prepare_actor
from dataset_builder.perspective import PerspectiveModel

H, W = 120, 160


def _solid_actor(colour, height=60, width=20):
    rgba = np.zeros((height + 4, width + 4, 4), np.uint8)
    rgba[2:-2, 2:-2, :3] = colour
    rgba[2:-2, 2:-2, 3] = 255
    return rgba


def _compositor(actors=None, config=None, plates=None, **kw):
    actors = actors if actors is not None else [prepare_actor(person_rgba(80, (200, 40, 40)), "red")]
    model = PerspectiveModel.from_references([(40, 20), (119, 60)], H)
    return Compositor(plates if plates is not None else [background(H, W)], actors, model, config or CompositeConfig(), **kw)


def _rows(mask):
    rows = np.nonzero((mask > 0).any(axis=1))[0]
    return rows[0], rows[-1]


# ---- perspective ---------------------------------------------------------------------------------------------


def test_perspective_model_from_references_parse_and_scale():
    m = PerspectiveModel.parse("40:20,120:60", 120)
    assert m.slope == pytest.approx(0.5) and m.intercept == pytest.approx(0.0)
    assert m.height_at(100) == pytest.approx(50)
    doubled = m.scaled(240)
    assert doubled.height_at(200) == pytest.approx(100)  # same person, twice the pixels
    lo, hi = m.row_range(min_height=10, max_row=119)
    assert lo == pytest.approx(20) and hi == 119
    # Two people of one height: a flat model (slope exactly 0), whatever sign the solver's rounding gives.
    flat = PerspectiveModel.parse("10:20,40:20", 120)
    assert (flat.slope, flat.intercept) == (0.0, 20.0) and flat.height_at(119) == 20.0
    assert PerspectiveModel.from_references([(10, 20), (40, 20), (90, 20)], 120).slope == 0.0


def test_perspective_description_names_the_horizon_instead_of_a_negative_height():
    # HallAndMonitor's fitted line (240 rows): 0 px at row 124.7 / 1.333 = 93.5, 194 px at the bottom row.
    hall = PerspectiveModel(1.333, -124.7, 240, "fit").describe()
    assert "horizon at row 94, 194 px at row 239; fit" in hall and "-45 px" not in hall
    assert "(20 px at row 30, 65 px at row 119; fit)" in PerspectiveModel(0.5, 5.5, 120, "fit").describe()


@pytest.mark.parametrize("spec,match", [
    ("40:20", "two reference"),
    ("40-20,80:30", "ROW:HEIGHT"),
    ("40:20,40:30", "must differ"),
    ("40:60,120:20", "negative"),
    ("40:0,120:20", "> 0"),
    ("400:20,120:60", "outside"),
])
def test_perspective_bad_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        PerspectiveModel.parse(spec, 120)


def test_perspective_fit_is_robust_to_outliers():
    rng = np.random.default_rng(0)
    rows = rng.uniform(30, 120, 40)
    heights = 0.6 * rows - 5 + rng.normal(0, 1, 40)
    heights[:8] *= 2.0  # merged pairs / mis-detections: 20% gross outliers
    m = PerspectiveModel.fit(rows, heights, 120)
    assert m.slope == pytest.approx(0.6, abs=0.05) and m.origin == "fit"
    with pytest.raises(ValueError, match="at least 5"):
        PerspectiveModel.fit(rows[:3], heights[:3], 120)
    with pytest.raises(ValueError, match="near one row"):
        PerspectiveModel.fit(np.full(10, 80.0) + rng.normal(0, 1, 10), heights[:10], 120)


def test_lower_feet_row_gives_a_taller_person():
    c = _compositor(config=CompositeConfig.clean())
    heights = []
    for row in (60, 110):
        h = float(c.perspective.height_at(row))
        sample = c.render(Plan(0, 0, [Placement(0, row, 80, h)]))
        top, bottom = _rows(sample.mask)
        assert bottom == pytest.approx(row, abs=1)  # feet on the row asked for
        assert bottom - top + 1 == pytest.approx(h, abs=1.5)
        heights.append(bottom - top + 1)
    assert heights[1] > heights[0] * 1.5


def test_planned_people_follow_the_model_and_include_small_far_ones():
    c = _compositor(config=CompositeConfig(max_actors=3, size_jitter=0.15))
    placements = [p for i in range(200) for p in c.plan(i).placements]
    ratios = np.array([p.height / c.perspective.height_at(p.feet_row) for p in placements])
    assert ratios.min() >= 0.85 - 1e-9 and ratios.max() <= 1.15 + 1e-9
    heights = np.array([p.height for p in placements])
    assert heights.min() < 20 and heights.max() > 50  # far and near people both occur


# ---- occlusion, shadows, realism ------------------------------------------------------------------------------------


def test_nearer_actor_occludes_the_farther_one():
    actors = [prepare_actor(_solid_actor((255, 0, 0)), "red"), prepare_actor(_solid_actor((0, 0, 255)), "blue")]
    c = _compositor(actors, CompositeConfig.clean())
    far = Placement(0, feet_row=90, center_x=80, height=50)
    near = Placement(1, feet_row=100, center_x=88, height=50)
    for order in ([far, near], [near, far]):  # drawing order comes from the feet rows, not the list
        s = c.render(Plan(0, 0, list(order)))
        overlap = s.image[60:88, 84:96]
        assert (overlap[:, :, 2] > 200).all() and (overlap[:, :, 0] < 50).all()
        assert (s.image[45:55, 72:76, 0] > 200).all()  # the far one is visible above the near one's head
        assert (s.mask[60:88, 84:96] == 255).all() and (s.mask[45:55, 72:76] == 255).all()  # union of both


def test_shadows_darken_the_image_but_stay_out_of_the_mask():
    plate = np.full((H, W, 3), 160, np.uint8)
    c = _compositor(config=CompositeConfig.clean(), plates=[plate])
    person = Placement(0, feet_row=100, center_x=60, height=60)
    s = c.render(Plan(0, 0, [person], shadow=(1.0, 0.1, 0.5)))  # light from the left: shadow to the right
    dark = 160 - s.image[:, :, 0].astype(int)
    shadow = (dark > 10) & (s.mask == 0)
    assert shadow.sum() >= 40 and dark[shadow].max() >= 30  # clearly darker ground
    assert np.nonzero(shadow.any(axis=0))[0].max() > 100  # cast to the right, away from the light
    assert np.nonzero(shadow.any(axis=1))[0].min() >= 95  # on the ground near the feet row
    assert (s.mask[:, 95:] == 0).all()  # shadow pixels are background
    assert set(np.unique(s.mask)) == {0, 255}
    # A shadow with no person (hard negative): darker image, empty mask.
    ghost = Placement(0, feet_row=100, center_x=60, height=60, shadow_only=True)
    s = c.render(Plan(0, 0, [ghost], shadow=(1.0, 0.0, 0.5)))  # sideways light: still a visible band
    assert s.mask.max() == 0 and s.plan.actors == 0
    assert ((160 - s.image[:, :, 0].astype(int)) > 10).sum() >= 20


def test_colour_match_pulls_the_person_towards_the_background():
    actors = [prepare_actor(_solid_actor((40, 200, 40)), "green")]
    plate = np.full((H, W, 3), (200, 60, 60), np.uint8)
    person = Placement(0, feet_row=100, center_x=80, height=50)
    raw = _compositor(actors, CompositeConfig.clean(), plates=[plate]).render(Plan(0, 0, [person]))
    matched = _compositor(actors, CompositeConfig.clean(colour_match=(1.0, 1.0)), plates=[plate]).render(
        Plan(0, 0, [person]))
    inside = raw.mask == 255
    before = np.abs(raw.image[inside].mean(axis=0) - (200, 60, 60)).sum()
    after = np.abs(matched.image[inside].mean(axis=0) - (200, 60, 60)).sum()
    assert after < 0.6 * before
    assert np.array_equal(raw.mask, matched.mask)  # colour never changes the label


def test_recoloured_people_wear_other_colours_under_the_same_mask():
    """recolour_fraction=1: every person in other clothes (dark ones pale in some samples), the label unchanged;
    0 (the default) leaves the samples exactly as they were."""
    actors = [prepare_actor(_solid_actor((40, 40, 120)), "dark blue")]
    plate = np.full((H, W, 3), (120, 120, 120), np.uint8)
    person = Placement(0, feet_row=100, center_x=80, height=50)
    raw = _compositor(actors, CompositeConfig.clean(), plates=[plate]).render(Plan(0, 0, [person]))
    inside = raw.mask == 255
    far = cv2.dilate(raw.mask, np.ones((5, 5), np.uint8)) == 0  # beyond the soft edge of the matte
    lightness, colours = [], []
    for index in range(12):
        sample = _compositor(actors, CompositeConfig.clean(recolour_fraction=1.0), plates=[plate]).render(
            Plan(index, 0, [person]))
        assert np.array_equal(sample.mask, raw.mask)  # colour never changes the label
        assert np.array_equal(sample.image[far], raw.image[far])  # nor the background
        rgb = sample.image[inside].astype(float).mean(axis=0)
        lightness.append(rgb.mean())
        colours.append(rgb)
    assert min(lightness) < 90 and max(lightness) > 150  # dark blue clothes also come out pale
    assert np.ptp(np.array(colours), axis=0).max() > 60  # and in other hues
    again = _compositor(actors, CompositeConfig.clean(recolour_fraction=0.0), plates=[plate]).render(
        Plan(0, 0, [person]))
    assert np.array_equal(again.image, raw.image)
    with pytest.raises(ValueError, match="recolour_fraction must be a probability"):
        CompositeConfig(recolour_fraction=1.5)


def test_moved_objects_change_the_background_but_not_the_label_nor_the_people():
    """object_fraction=1: pieces of the site's own plate pasted elsewhere, background in the mask; the people are
    drawn over them exactly as without them (the objects' draws have a stream of their own)."""
    plate = background(H, W)
    actors = [prepare_actor(_solid_actor((200, 40, 40)), "red")]
    person = Placement(0, feet_row=100, center_x=80, height=50)
    moved = 0
    for index in range(8):
        plain = _compositor(actors, CompositeConfig.clean(), plates=[plate]).render(Plan(index, 0, [person]))
        objects = _compositor(actors, CompositeConfig.clean(object_fraction=1.0), plates=[plate]).render(
            Plan(index, 0, [person]))
        assert np.array_equal(objects.mask, plain.mask) and np.array_equal(objects.plate, plate)
        inside = cv2.erode(plain.mask, np.ones((3, 3), np.uint8)) == 255  # the person, away from the soft edge
        assert np.array_equal(objects.image[inside], plain.image[inside])
        changed = np.abs(objects.image.astype(int) - plain.image).max(axis=2) > 8
        assert not (changed & inside).any()
        moved += changed.sum() > 50  # an object somewhere it differs from the plate
    assert moved >= 6
    # With every random effect on, the people's draws (blur, feather, colour, noise) are the same with objects on.
    for index in range(4):
        off = _compositor(config=CompositeConfig(object_fraction=0.0), plates=[plate]).sample(index)
        on = _compositor(config=CompositeConfig(object_fraction=1.0), plates=[plate]).sample(index)
        assert on.plan == off.plan and np.array_equal(on.mask, off.mask)
        person = cv2.erode(off.mask, np.ones((3, 3), np.uint8)) == 255
        assert np.array_equal(on.image[person], off.image[person])
    empty = _compositor(actors, CompositeConfig.clean(object_fraction=1.0, max_actors=0), plates=[plate]).sample(3)
    assert not empty.mask.any() and (np.abs(empty.image.astype(int) - plate).max(axis=2) > 8).sum() > 50
    with pytest.raises(ValueError, match="object_fraction must be a probability"):
        CompositeConfig(object_fraction=-0.1)
    # The default moves things in about a tenth of the images (0.3 cost pale-clothed people, README levers);
    # clean() moves none.
    share = CompositeConfig().object_fraction
    c = _compositor(actors, CompositeConfig.clean(object_fraction=share, max_actors=0), plates=[plate])
    moved = sum((np.abs(c.sample(i).image.astype(int) - plate).max(axis=2) > 8).sum() > 50 for i in range(60))
    assert 2 <= moved <= 12
    assert CompositeConfig.clean().object_fraction == 0.0


def test_camera_noise_and_jitter_change_the_background_but_not_by_much():
    plate = background(H, W)
    c = _compositor(config=CompositeConfig(max_actors=0, lighting_probability=0.0), plates=[plate])
    diffs = [np.abs(c.sample(i).image.astype(int) - plate).mean() for i in range(10)]
    assert all(0.5 < d < 25 for d in diffs)  # never the exact plate, always the same scene
    assert c.sample(0).mask.max() == 0


def _offset(image: np.ndarray, plate: np.ndarray) -> tuple[int, int]:
    """(dy, dx) in whole px by which ``image``'s scene is shifted against ``plate`` (phase correlation: blind to the
    composites' global light and colour changes)."""
    import cv2

    grey = [cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float32) for a in (plate, image)]
    (dx, dy), _ = cv2.phaseCorrelate(*grey)
    return round(dy), round(dx)


def test_background_stays_registered_with_the_plate_unless_the_camera_shakes():
    # A fixed camera's frames line up with its plate: a model trained on shifted composites learns to ignore plate
    # differences along edges, and with them real people standing in cluttered parts of the scene.
    plate = background(H, W)
    still = _compositor(config=CompositeConfig(max_actors=0, lighting_probability=0.0), plates=[plate])
    assert CompositeConfig().shift_px == 0
    assert all(_offset(still.sample(i).image, plate) == (0, 0) for i in range(8))
    shaking = _compositor(config=CompositeConfig(max_actors=0, lighting_probability=0.0, shift_px=2), plates=[plate])
    offsets = {_offset(shaking.sample(i).image, plate) for i in range(8)}
    assert len(offsets) > 2 and max(max(abs(dy), abs(dx)) for dy, dx in offsets) <= 2
    with pytest.raises(ValueError, match="shift_px must be >= 0"):
        CompositeConfig(shift_px=-1)


def test_empty_images_and_people_counts():
    c = _compositor(config=CompositeConfig(max_actors=3, empty_fraction=0.3))
    counts = [c.plan(i).actors for i in range(300)]
    assert 0.2 < counts.count(0) / 300 < 0.4
    assert max(counts) == 3
    for i in range(5):
        s = c.sample(i)
        assert s.image.shape == (H, W, 3) and s.image.dtype == np.uint8
        assert s.mask.shape == (H, W) and s.mask.dtype == np.uint8
        assert set(np.unique(s.mask)) <= {0, 255}
        assert s.actors == s.plan.actors and (s.mask.max() == 0) == (s.actors == 0 or s.mask.sum() == 0)


def test_anisotropic_width_scale_stretches_people():
    actors = [prepare_actor(_solid_actor((255, 0, 0), 60, 20), "red")]
    person = Placement(0, feet_row=100, center_x=80, height=60)
    widths = []
    for scale in (1.0, 1.5):
        s = _compositor(actors, CompositeConfig.clean(), width_scale=scale).render(Plan(0, 0, [person]))
        cols = np.nonzero(s.mask.any(axis=0))[0]
        widths.append(cols[-1] - cols[0] + 1)
    assert widths[1] == pytest.approx(widths[0] * 1.5, abs=1.5)


# ---- determinism ----------------------------------------------------------------------------------------------------


def test_same_seed_and_index_give_identical_samples_in_any_order():
    a = _compositor(seed=7)
    b = _compositor(seed=7)
    forward = [a.sample(i) for i in range(6)]
    backward = [b.sample(i) for i in reversed(range(6))][::-1]
    for x, y in zip(forward, backward, strict=True):
        assert np.array_equal(x.image, y.image) and np.array_equal(x.mask, y.mask)
    other = _compositor(seed=8).sample(0)
    assert not np.array_equal(other.image, forward[0].image)
    assert not np.array_equal(forward[1].image, forward[0].image)


def test_compositor_pickles_for_worker_processes():
    import pickle

    c = _compositor(seed=3)
    first = c.sample(2)
    clone = pickle.loads(pickle.dumps(c))
    assert clone._noise_bank is None or clone._noise_bank is c._noise_bank
    assert np.array_equal(clone.sample(2).image, first.image)


# ---- bad input --------------------------------------------------------------------------------------------------------


def test_bad_inputs():
    with pytest.raises(ValueError, match="no plates"):
        _compositor(plates=[])
    with pytest.raises(ValueError, match="plate 1 is"):
        _compositor(plates=[background(H, W), background(H, W + 2)])
    with pytest.raises(ValueError, match="no actor"):
        _compositor(actors=[])
    with pytest.raises(ValueError, match="no opaque"):
        prepare_actor(np.zeros((10, 10, 4), np.uint8))
    with pytest.raises(ValueError, match="probability"):
        CompositeConfig(empty_fraction=1.5)
    with pytest.raises(ValueError, match="feet_region"):
        _compositor(feet_region=np.zeros((H, W), bool))


def test_feet_region_limits_where_people_stand():
    region = np.zeros((H, W), bool)
    region[90:110, 100:140] = True
    c = _compositor(config=CompositeConfig(max_actors=3, empty_fraction=0.0), feet_region=region)
    for i in range(20):
        for p in c.plan(i).placements:
            assert 90 <= p.feet_row < 111 and 100 <= p.center_x < 141


# ---- real silhouettes on the real site -------------------------------------------------------------------------------


def test_davis_runner_on_pedestrians_plate(pedestrians, parkour, tmp_path):
    from dataset_builder.silhouettes import extract_silhouettes, read_silhouette
    from humanseg.video import read_image

    found = extract_silhouettes(parkour, "masks", tmp_path / "sil", step=30)
    actors = [prepare_actor(read_silhouette(tmp_path / "sil", s), s.name) for s in found]
    plate = read_image(pedestrians / "empty_bg000001.jpg")
    model = PerspectiveModel.parse("30:50,150:90", 240)
    c = Compositor([plate], actors, model, CompositeConfig(max_actors=2, empty_fraction=0.0), seed=1)
    for i in range(4):
        s = c.sample(i)
        person_rows = np.nonzero(s.mask.any(axis=1))[0]
        assert len(person_rows) > 0
        # The tallest person is no taller than the model allows at the lowest feet row (+15% jitter).
        assert len(person_rows) <= model.height_at(240 * 1.04) * 1.15 * 2 + 2


# ---- strong attached floor shadows, border-cut people, windows of a larger plate ---------------------------------


def test_attached_floor_shadow_darkens_beside_the_feet_to_the_configured_ratio():
    plate = np.full((H, W, 3), 200, np.uint8)
    c = _compositor([prepare_actor(_solid_actor((255, 0, 0)), "red")], CompositeConfig.clean(), plates=[plate])
    person = Placement(0, feet_row=100, center_x=80, height=60, attached_shadow=0.4)
    s = c.render(Plan(0, 0, [person]))
    plain = c.render(Plan(0, 0, [Placement(0, feet_row=100, center_x=80, height=60)]))
    assert np.array_equal(s.mask, plain.mask)  # the shadow is background
    ratio = s.image[:, :, 1].astype(float) / 200  # brightness left of the grey plate (green channel)
    ground = s.mask == 0
    core = ground & (np.abs(ratio - 0.6) <= 0.02)  # 1 - 0.4 of the light
    assert core.sum() >= 20
    assert ratio[ground].min() >= 0.6 - 0.01  # never darker than configured
    rows = np.nonzero(core.any(axis=1))[0]
    assert rows.min() >= 100 - 0.12 * 60 - 1 and rows.max() <= 100 + 0.12 * 60 + 1  # on the floor at the feet
    # Attached: core shadow pixels right beside the person's feet rows, left or right of the body.
    body = np.nonzero(s.mask[95:101].any(axis=0))[0]
    beside = core[95:101, max(body.min() - 3, 0):body.min()].any() or core[95:101, body.max() + 1:body.max() + 4].any()
    assert beside
    defaults = CompositeConfig()
    assert defaults.attached_shadow_fraction > 0
    assert 1 - defaults.attached_shadow_strength[1] == pytest.approx(0.45)  # as dark as real indoor floor shadows
    assert 1 - defaults.attached_shadow_strength[0] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="attached_shadow_strength"):
        CompositeConfig(attached_shadow_strength=(0.5, 1.2))


def test_border_cut_person_mask_is_cut_at_the_edge():
    c = _compositor([prepare_actor(_solid_actor((255, 0, 0)), "red")], CompositeConfig.clean())
    full = c.render(Plan(0, 0, [Placement(0, feet_row=100, center_x=40, height=60)]))
    cols = np.nonzero(full.mask.any(axis=0))[0]
    assert (cols.min(), cols.max()) == (30, 49)  # 20 px wide person centred on column 40
    left = c.render(Plan(0, 0, [Placement(0, feet_row=100, center_x=0, height=60)]))
    assert np.array_equal(left.mask[:, :10], full.mask[:, 40:50]) and left.mask[:, 10:].max() == 0
    right = c.render(Plan(0, 0, [Placement(0, feet_row=100, center_x=W, height=60)]))
    assert np.array_equal(right.mask[:, W - 10:], full.mask[:, 30:40]) and right.mask[:, :W - 10].max() == 0
    bottom = c.render(Plan(0, 0, [Placement(0, feet_row=H + 15, center_x=40, height=60)]))
    assert np.array_equal(bottom.mask[35:], full.mask[:H - 35]) and bottom.mask[:35].max() == 0


def test_border_cut_fraction_places_people_across_the_edges():
    c = _compositor([prepare_actor(_solid_actor((255, 0, 0)), "red")],
                    CompositeConfig.clean(border_cut_fraction=1.0, max_actors=1))
    edges = set()
    for i in range(30):
        m = c.sample(i).mask > 0
        assert m.any()
        touched = {name for name, hit in (("left", m[:, 0].any()), ("right", m[:, -1].any()),
                                          ("bottom", m[-1].any())) if hit}
        assert touched, f"sample {i}: person inside the frame"
        edges |= touched
    assert edges == {"left", "right", "bottom"}
    with pytest.raises(ValueError, match="border_cut_fraction"):
        CompositeConfig(border_cut_fraction=1.5)


def test_windows_of_a_larger_plate_show_people_at_their_plate_size():
    big = background(2 * H, 2 * W, seed=3)
    actors = [prepare_actor(_solid_actor((255, 0, 0)), "red")]
    model = PerspectiveModel.from_references([(80, 40), (239, 120)], 2 * H)  # plate pixels
    whole = Compositor([big], actors, model, CompositeConfig.clean())
    win = Compositor([big], actors, model, CompositeConfig.clean(), window=(H, W))
    person = Placement(0, feet_row=200, center_x=250, height=60)
    a = whole.render(Plan(0, 0, [person]))
    b = win.render(Plan(0, 0, [person], window=(H, W)))
    assert b.image.shape == (H, W, 3) and np.array_equal(b.plate, big[H:, W:])
    assert np.array_equal(b.mask, a.mask[H:, W:]) and np.array_equal(b.image, a.image[H:, W:])
    cfg = CompositeConfig.clean(max_actors=2, size_jitter=0.0)
    win = Compositor([big], actors, model, cfg, window=(H, W), seed=1)
    with_people = 0
    for i in range(40):
        plan = win.plan(i)
        wy, wx = plan.window
        assert wy in (*range(0, H + 1, H // 8), H) and wx in (*range(0, W + 1, W // 8), W)
        for p in plan.placements:  # absolute feet rows of the plate, sized by the plate's perspective
            assert p.height == pytest.approx(max(float(model.height_at(p.feet_row)), cfg.min_height))
        s = win.render(plan)
        assert np.array_equal(s.plate, big[wy:wy + H, wx:wx + W])
        with_people += bool(s.mask.any())
    assert with_people >= 32  # most windows hold a person
    with pytest.raises(ValueError, match="window"):
        Compositor([big], actors, model, CompositeConfig.clean(), window=(3 * H, W))


def test_parse_overrides_types_each_value_by_its_field_and_names_bad_items():
    from dataset_builder.composite import parse_overrides

    assert parse_overrides(["brightness=0.3", "shadow_strength=0.2,0.5", "flip=no", "max-actors=2"]) == {
        "brightness": 0.3, "shadow_strength": (0.2, 0.5), "flip": False, "max_actors": 2,
    }  # fmt: skip
    assert parse_overrides([]) == {}
    with pytest.raises(ValueError, match=r"'brightnes=0.3' is not NAME=VALUE with NAME one of: max_actors, "):
        parse_overrides(["brightnes=0.3"])
    with pytest.raises(ValueError, match=r"'shadow_strength=0.2': shadow_strength takes 2 comma-separated numbers "
                                         r"\(default \(0.25, 0.6\)\)"):  # fmt: skip
        parse_overrides(["shadow_strength=0.2"])
    with pytest.raises(ValueError, match=r"'flip=maybe': flip takes bool"):
        parse_overrides(["flip=maybe"])
    with pytest.raises(ValueError, match=r"shadow_strength must be a range within \[0, 1\].*got \(0.6, 0.2\)"):
        parse_overrides(["shadow_strength=0.6,0.2"])
