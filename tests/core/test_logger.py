"""Progress where there is no terminal: one plain line per log interval, steps/s, samples/s only when meaningful."""

from omnissl.logger import MetricsLogger


def test_without_a_terminal_each_interval_prints_one_plain_line(tmp_path, capsys, monkeypatch):
    clock = iter([0.0, 0.0, 5.0, 10.0, 10.0])  # start, then 10 steps in 5 s, then 10 steps in 5 s
    monkeypatch.setattr("omnissl.logger.time.perf_counter", lambda: next(clock))
    logger = MetricsLogger(tmp_path, total_steps=30, progress=True)
    assert logger.bar is None  # pytest's captured stderr is not a terminal
    logger.log(10, {"loss": 0.5, "samples_per_s": 640.0})
    logger.log(20, {"loss": 0.25, "samples_per_s": 1.0})  # a full-graph task: one sample per step
    logger.log(20, {"eval/x": 1.0})  # evaluation records print nothing
    logger.close()
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    assert lines[0] == "step 10/30  loss 0.5000  2.00 steps/s, 640 samples/s  elapsed 0:00:05  eta 0:00:10"
    assert lines[1].startswith("step 20/30  loss 0.2500") and "steps/s" in lines[1] and "samples/s" not in lines[1]
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 3


def test_progress_off_prints_nothing(tmp_path, capsys):
    logger = MetricsLogger(tmp_path, total_steps=10, progress=False)
    logger.log(5, {"loss": 1.0})
    logger.close()
    assert capsys.readouterr().err == ""
