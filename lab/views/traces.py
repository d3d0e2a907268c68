"""The trace viewer: a filtered list, a group side by side, one prompt across steps, one trace."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseRedirect, QueryDict, StreamingHttpResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from lab.access import get_for_user
from lab.forms import AnnotationForm
from lab.models import Annotation, Run, Trace
from lab.selectors.traces import (
    FILTER_PARAMS, STATUSES, TraceFilter, prompt_history, review_queue, trace_group, trace_page,
)
from lab.services.annotations import annotation_save, annotations_csv
from lab.views.common import int_param, page


@login_required
def trace_list(request, run_id: int):
    run, access = get_for_user(request.user, Run, id=run_id)
    flt, errors = TraceFilter.from_query(request.GET)
    page_number = max(1, int_param(request.GET, "page", 1) or 1)
    traces, has_next = trace_page(run.id, flt, page=page_number, user=request.user)
    query = {k: v for k, v in request.GET.items() if k != "page" and v}
    return page(
        request,
        "lab/trace_list.html",
        {
            "run": run, "traces": traces, "flt": flt, "errors": errors, "statuses": STATUSES,
            "page_number": page_number, "has_next": has_next, "query": urlencode(query),
            "can_annotate": access.can_annotate,
            "queue_query": urlencode({k: v for k, v in filter_query(request.GET).items() if k not in errors}),
        },
        nav="review",
    )


def group_url(run_id: int, group_id: str) -> str:
    """The group page of `group_id`; the id travels in the query, where any character is safe."""
    return reverse("trace_group", args=[run_id]) + "?" + urlencode({"group_id": group_id})


@login_required
def trace_group_view(request, run_id: int, group_id: str | None = None):
    run, access = get_for_user(request.user, Run, id=run_id)
    if group_id is None:
        group_id = request.GET.get("group_id", "")
    traces = trace_group(run.id, group_id) if group_id else []
    if not traces:
        raise Http404
    mine = {a.trace_id: a for a in Annotation.objects.filter(trace__in=traces, user=request.user)}
    rows = [(t, mine.get(t.id)) for t in traces]
    return page(request, "lab/trace_group.html", {"run": run, "rows": rows, "group_id": group_id, "first": traces[0], "can_annotate": access.can_annotate}, nav="review")


@login_required
def prompt_view(request, run_id: int):
    run, _ = get_for_user(request.user, Run, id=run_id)
    prompt_id = request.GET.get("prompt_id", "")
    page_number = max(1, int_param(request.GET, "page", 1) or 1)
    history = prompt_history(run.id, prompt_id, page=page_number) if prompt_id else None
    if history is None or not history.total:
        raise Http404
    if not history.traces:  # past the last page
        return HttpResponseRedirect(reverse("prompt_history", args=[run.id]) + "?" + urlencode({"prompt_id": prompt_id}))
    prompt = Trace.objects.filter(id=history.traces[0].id).values_list("prompt", flat=True).first()
    return page(
        request, "lab/prompt_history.html",
        {"run": run, "history": history, "traces": history.traces, "prompt_id": prompt_id, "prompt": prompt,
         "query": urlencode({"prompt_id": prompt_id})},
        nav="review",
    )


@login_required
def trace_detail(request, trace_id: int):
    trace, access = get_for_user(request.user, Trace.objects.select_related("run"), id=trace_id)
    mine = Annotation.objects.filter(trace=trace, user=request.user).first()
    form = AnnotationForm(initial={"rating": mine.rating, "labels": ", ".join(mine.labels), "comment": mine.comment} if mine else None)
    others = Annotation.objects.filter(trace=trace).exclude(user=request.user).select_related("user")
    siblings = Trace.objects.filter(run_id=trace.run_id, group_id=trace.group_id).count() if trace.group_id else 0
    return page(
        request,
        "lab/trace_detail.html",
        {"run": trace.run, "trace": trace, "form": form, "mine": mine, "others": others, "siblings": siblings,
         "can_annotate": access.can_annotate, "queue": request.GET.get("queue") == "1"},
        nav="review",
    )


@login_required
@require_POST
def trace_annotate(request, trace_id: int):
    trace, access = get_for_user(request.user, Trace.objects.select_related("run"), id=trace_id, action="annotate")
    form = AnnotationForm(request.POST)
    if form.is_valid():
        try:
            annotation_save(trace=trace, user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"Annotation saved. Trace {trace.id} rated {form.cleaned_data['rating']}.")
            if request.POST.get("queue") == "1":
                return HttpResponseRedirect(queue_url(trace.run_id, QueryDict(request.POST.get("queue_filter", "")), after=trace.seq))
    else:
        messages.error(request, "Annotation not saved: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
    if request.POST.get("queue") == "1":  # not saved: the queue opens this trace again
        return HttpResponseRedirect(queue_url(trace.run_id, QueryDict(request.POST.get("queue_filter", "")), after=trace.seq - 1))
    back = request.POST.get("back", "")
    if back == "group" and trace.group_id:
        return HttpResponseRedirect(group_url(trace.run_id, trace.group_id))
    return HttpResponseRedirect(reverse("trace", args=[trace.id]))


QUEUE_PARAMS = tuple(name for name in FILTER_PARAMS if name != "reviewed")  # the queue is the unrated ones anyway


def filter_query(params) -> dict[str, str]:
    """The queue's filter parameters of a query (non-empty ones), to carry from trace to trace."""
    return {name: params.get(name) for name in QUEUE_PARAMS if params.get(name)}


def queue_url(run_id: int, params, *, after: int | None = None) -> str:
    """The review queue over the traces `params` filters, going on after the trace of seq `after`."""
    query = filter_query(params)
    if after is not None:
        query["after"] = str(after)
    return reverse("review_next", args=[run_id]) + ("?" + urlencode(query) if query else "")


@login_required
def review_next(request, run_id: int):
    """The review queue: the traces of the run (or of the filtered set) this reviewer has not rated, one at a
    time, with the progress ("12 of 64 reviewed"), Skip, and keys g/b/f/n (static/lab/review.js)."""
    run, _ = get_for_user(request.user, Run, id=run_id, action="annotate")
    flt, errors = TraceFilter.from_query(request.GET)
    query = filter_query(request.GET)
    queue = None if errors else review_queue(run.id, request.user, flt, after_seq=int_param(request.GET, "after"))
    trace = queue.trace if queue else None
    return page(
        request,
        "lab/trace_queue.html",
        {
            "run": run, "queue": queue, "trace": trace, "errors": errors, "form": AnnotationForm(),
            "filtered": bool(query), "query": urlencode(query),
            "skip_url": queue_url(run.id, request.GET, after=trace.seq) if trace else "",
        },
        nav="review",
    )


@login_required
def annotations_export(request, run_id: int):
    run, _ = get_for_user(request.user, Run, id=run_id)
    response = StreamingHttpResponse(annotations_csv(Annotation.objects.filter(trace__run=run)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="run-{run.id}-annotations.csv"'
    return response
