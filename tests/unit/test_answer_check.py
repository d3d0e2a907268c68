"""Answer extraction and checking on golden cases."""
import threading

import pytest

from r1model.evaluate.answer_check import (
    check_answer, detect_mode, extract_answer, final_number, find_last_boxed, to_number,
)


@pytest.mark.parametrize("text,expected", [
    ("<think>hm</think><answer>42</answer>", "42"),
    ("<answer>1</answer> then <answer> 2 </answer>", "2"),
    ("<answer>so \\boxed{7}</answer>", "7"),
    ("first \\boxed{1} then \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}.", "\\left( 3, \\frac{\\pi}{2} \\right)"),
    ("\\boxed{{a}^{b_{c}}}", "{a}^{b_{c}}"),
    ("\\fbox{5}", "5"),
    ("\\boxed 5 is it", "5"),
    ("no marked answer 17", None),
    ("\\boxed{unclosed", None),
    ("", None),
])
def test_extract_answer_golden_cases(text, expected):
    assert extract_answer(text) == expected


def test_unclosed_last_boxed_falls_back_to_the_previous_complete_one():
    assert find_last_boxed("\\boxed{3} and then \\boxed{4") == "3"


@pytest.mark.parametrize("prediction,gold", [
    ("\\boxed{\\frac{1}{2}}", "0.5"),
    ("<answer>1/2</answer>", "\\frac12"),
    ("\\boxed{0.5}", "\\frac{1}{2}"),
    ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)"),
    ("\\boxed{[1,2)}", "[1,2)"),
    ("\\boxed{\\{2,1\\}}", "\\{1,2\\}"),
    ("\\boxed{\\sqrt{4}}", "2"),
    ("\\boxed{\\dfrac{\\sqrt{3}}{2}}", "\\frac{\\sqrt3}{2}"),
    ("\\boxed{2x+1}", "1+2x"),
    ("<answer>1,000</answer>", "1000"),
    ("<answer>$18</answer>", "18"),
    ("<answer>50\\%</answer>", "0.5"),
    ("<answer>(B)</answer>", "B"),
    ("\\boxed{\\text{(C)}}", "\\text{(C)}"),
    ("\\boxed{x=5}", "5"),
    ("d = \\boxed{\\textbf{(073)}}.", "073"),
    ("\\boxed{5\\text{ cm}}", "5"),
])
def test_equivalent_answers_are_correct(prediction, gold):
    result = check_answer(prediction, gold)
    assert result.status == "correct", result


@pytest.mark.parametrize("prediction,gold", [
    ("\\boxed{\\frac{1}{3}}", "0.5"),
    ("\\boxed{(1,2]}", "[1,2)"),
    ("\\boxed{\\{1,3\\}}", "\\{1,2\\}"),
    ("\\boxed{x}", "\\frac{\\sqrt{3}}{2}"),
    ("\\boxed{2x-1}", "1+2x"),
    ("<answer>C</answer>", "B"),
    ("<answer>17</answer>", "18"),
    ("\\boxed{-3}", "3"),
])
def test_non_equivalent_answers_are_wrong(prediction, gold):
    assert check_answer(prediction, gold).status == "wrong"


@pytest.mark.parametrize("prediction,gold,mode", [
    ("I am not sure.", "\\frac{\\pi}{2}", "math"),
    ("no number here", "18", "numeric"),
    ("<answer>maybe</answer>", "B", "choice"),
    ("<answer>" + "1" * 3000 + "</answer>", "1", "auto"),
])
def test_unparseable_predictions_are_reported_apart_from_wrong(prediction, gold, mode):
    result = check_answer(prediction, gold, mode=mode)
    assert result.status == "unparseable" and result.reason


def test_only_a_marked_answer_counts_by_default():
    assert check_answer("The answer is 18.", "18").status == "unparseable"
    assert check_answer("so it is 18", "18", mode="numeric").status == "unparseable"
    assert check_answer("<answer>18</answer>", "18").status == "correct"
    assert check_answer("so \\boxed{18}", "18").status == "correct"


def test_free_text_fallback_reads_a_stated_final_number():
    assert check_answer("The answer is 18 dollars.", "18", fallback=True).status == "correct"


@pytest.mark.parametrize("gold,mode", [("", "auto"), ("not a number", "numeric"), ("42", "choice")])
def test_unusable_gold_answer_is_an_error_not_a_wrong_answer(gold, mode):
    assert check_answer("<answer>42</answer>", gold, mode=mode).status == "error"


def test_exact_mode_normalises_whitespace_and_case_only():
    assert check_answer("<answer>  Paris </answer>", "paris", mode="exact").status == "correct"
    assert check_answer("<answer>Pari</answer>", "Paris", mode="exact").status == "wrong"


def test_numeric_mode_uses_a_relative_tolerance():
    assert check_answer("<answer>3.1415927</answer>", "3.14159265", mode="numeric").status == "correct"
    assert check_answer("<answer>3.14</answer>", "3.14159265", mode="numeric").status == "wrong"


@pytest.mark.parametrize("text,number", [
    ("9 + 6 = <<9+6=15>>15 liters of water out of the 24 liters.", "15"),
    ("So the answer is 42.", "42"),
    ("blah\n#### 1,234", "1234"),
    ("He pays $400 000 - $282 000 = $118 000.", "118000"),
    ("It would take 15 hours to clean 45 rooms.", "15"),
    ("a\nShe'll have 80 toothpicks / 10 each week = in <<80/10=8>>8 more weeks.", "8"),
])
def test_final_number_of_free_text_solutions(text, number):
    assert final_number(text).replace(",", "") == number


@pytest.mark.parametrize("text,value", [("1,234", 1234), ("-2.5", -2.5), ("\\frac{3}{4}", 0.75), ("50\\%", 0.5),
                                        ("$18", 18), ("x = 3", 3), ("1e3", 1000), ("abc", None), ("1/0", None)])
def test_to_number(text, value):
    result = to_number(text)
    assert (result is None) if value is None else float(result) == value


def test_auto_mode_detection():
    assert detect_mode("B") == "choice"
    assert detect_mode("-12.5") == "numeric"
    assert detect_mode("\\frac{\\pi}{2}") == "math"


def test_pathological_input_times_out_as_unparseable_and_the_next_check_still_works():
    result = check_answer("\\boxed{9^{9^{9^{9}}}}", "5", timeout=1.0)
    assert result.status == "unparseable" and "timed out" in result.reason
    assert check_answer("\\boxed{\\frac{\\pi}{2}}", "\\frac{\\pi}{2}").status == "correct"


def test_math_checks_work_from_worker_threads():
    results = []
    threads = [threading.Thread(target=lambda g=g: results.append(check_answer("\\boxed{\\frac{1}{4}}", g)))
               for g in ["0.25", "\\frac{2}{8}", "\\dfrac14"]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status for r in results] == ["correct"] * 3


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode"):
        check_answer("1", "1", mode="fuzzy")


def test_a_forked_child_gets_its_own_math_helper():
    import os

    assert check_answer("\\boxed{\\frac{\\pi}{3}}", "\\frac{\\pi}{3}").status == "correct"  # parent's helper runs
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: must not talk through the parent's pipes
        status = check_answer("\\boxed{\\sqrt{9}}", "3", mode="math").status
        os.write(write, status.encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 100).decode() == "correct"
    assert check_answer("\\boxed{\\frac{\\pi}{4}}", "\\frac{\\pi}{4}").status == "correct"


def test_a_crashed_math_helper_is_an_error_and_the_next_check_restarts_it():
    from r1model.evaluate import answer_check

    checker = answer_check.MathChecker()
    assert checker.check("\\frac{1}{5}", "0.2", True).status == "correct"
    checker._proc.kill()
    checker._proc.wait()
    assert checker.check("\\frac{1}{6}", "\\frac{2}{12}", True).status in ("error", "correct")
    assert checker.check("\\frac{1}{7}", "\\frac{2}{14}", True).status == "correct"
    checker.close()
