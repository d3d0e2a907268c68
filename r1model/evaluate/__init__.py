"""Evaluation with the R1 report's protocol.

    answer_check  the answer policy (its docstring), extract_answer, check_answer (math-verify in a helper
                  process with a deadline)
    metrics       EVAL_METRICS (the metric names), pass_at_k (unbiased), pass_at_1, cons_at_k (verdict vote)
    benchmarks    load_benchmark: built-in task test splits, MATH-500, AIME 2024, AMC 2023, GSM8K, HumanEval
    score         judge_completions (the one judge), `python -m r1model score`: completions from anywhere
    runner        `python -m r1model evaluate`: a checkpoint on a benchmark (the only module here that
                  imports torch; nothing is imported from this package file, so the lab stays torch-free)
"""
