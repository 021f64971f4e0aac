from humanseg.timing import WarmMean


def test_the_first_frame_is_left_out_of_the_mean():
    timer = WarmMean()
    assert timer.mean == 0.0
    timer.add(900.0)  # model loading
    assert timer.mean == 900.0  # the only sample so far
    for ms in (10.0, 20.0, 30.0):
        timer.add(ms)
    assert timer.mean == 20.0
