"""Multi-seed benchmark runs of the scripts, their results table and learning-curve plots.

python -m benchmarks list                  # the suites defined in benchmarks/suites/
python -m benchmarks run SUITE --workers 2 # run every (env, seed) of a suite
python -m benchmarks summarize             # rebuild benchmarks/RESULTS.md and benchmarks/plots/
python -m benchmarks all --workers 2       # rerun every suite, the speed benchmarks, then summarize
"""
