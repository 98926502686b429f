"""Frames on a stream (docs/contract.md, "Frame" and "Streams"): however the bytes are cut
into reads, the reader gives back exactly the frames that were written."""

import pytest
import trio

from netsync.wire import MAX_FRAME, FrameError, FrameReader, encode


class ChunkedStream:
    """Bytes handed out in the given read sizes, then end of stream (pure logic, no network)."""

    def __init__(self, data: bytes, cuts: list[int]) -> None:
        self.data, self.cuts = data, list(cuts)

    async def read(self, n: int | None = None) -> bytes:
        size = self.cuts.pop(0) if self.cuts else len(self.data)
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk

    async def write(self, data: bytes) -> None:
        raise AssertionError("not written to")


def read_all(data: bytes, cuts: list[int]) -> list[dict]:
    async def main() -> list[dict]:
        reader = FrameReader(ChunkedStream(data, cuts))
        frames = []
        while (frame := await reader.next()) is not None:
            frames.append(frame)
        return frames

    return trio.run(main)


FRAMES = [{"cid": f"c{i}", "rid": i, "key": "k" * i} for i in range(20)]
DATA = b"".join(encode(f) for f in FRAMES)


@pytest.mark.parametrize("cuts", [[len(DATA)], [1] * len(DATA), [3, 5, 7, 200, 2, 11] * 40, [4, 9, 4]])
def test_frames_come_back_whole_however_the_reads_cut_them(cuts: list[int]) -> None:
    assert read_all(DATA, cuts) == FRAMES


def test_a_stream_that_ends_inside_a_frame_is_an_error_not_a_short_frame() -> None:
    with pytest.raises(FrameError, match="stream ended inside a frame"):
        read_all(DATA[:-3], [len(DATA)])


def test_an_oversized_length_is_refused_before_its_body_is_read() -> None:
    with pytest.raises(FrameError, match=f"exceeds {MAX_FRAME}"):
        read_all((MAX_FRAME + 1).to_bytes(4, "big"), [4])
    with pytest.raises(FrameError, match="exceeds"):
        encode({"cid": "x" * MAX_FRAME})


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]"])
def test_a_frame_that_is_not_a_json_object_is_refused(body: bytes) -> None:
    with pytest.raises(FrameError, match="not"):
        read_all(len(body).to_bytes(4, "big") + body, [100])


def test_a_deeply_nested_frame_is_refused_not_a_crash() -> None:
    # 65,000 `[` fit in a 64 KiB frame; json.loads raised RecursionError, which is no FrameError.
    body = b"[" * 65_000
    with pytest.raises(FrameError, match="not JSON"):
        read_all(len(body).to_bytes(4, "big") + body, [len(body) + 4])
