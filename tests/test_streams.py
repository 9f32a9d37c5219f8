import itertools

import torch

from imbcl.engine.streams import Stream, generator, numpy_rng, stream_seed


def test_streams_of_one_seed_draw_independent_numbers():
    draws = {s: torch.randn(16, generator=generator(7, s)) for s in Stream}
    for a, b in itertools.combinations(Stream, 2):
        assert not torch.allclose(draws[a], draws[b]), (a, b)


def test_a_stream_is_a_function_of_seed_and_purpose_only():
    assert torch.equal(
        torch.rand(8, generator=generator(3, Stream.DATA)),
        torch.rand(8, generator=generator(3, Stream.DATA)),
    )
    assert stream_seed(3, Stream.DATA) != stream_seed(4, Stream.DATA)
    assert 0 <= stream_seed(2**62, Stream.PROBE) < 2**63
    assert numpy_rng(5, Stream.FEW_SHOT).random() == numpy_rng(5, Stream.FEW_SHOT).random()
    assert numpy_rng(5, Stream.FEW_SHOT).random() != numpy_rng(5, Stream.IMAGE_SPLIT).random()
