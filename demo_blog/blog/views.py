"""The blog's pages. Writes go through services (each change and its event in one
transaction); the counter, search and activity pages read the consumer groups' tables."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import search, services
from .forms import PostForm
from .models import ActivityEntry, Author, IndexRebuild, Post, PostStatus, PublishedCount
from .status import group_status, live_status

CATCH_UP = ("The post counter, the search index and the activity feed catch up in a "
            "moment: each is a consumer group reading the event log.")


def _author_of(user) -> Author:
    """The signed-in user's author profile (made on first use, e.g. for the admin)."""
    author, _ = Author.objects.get_or_create(user=user, defaults={"name": user.get_username()})
    return author


def _own_post(request: HttpRequest, pk: int) -> Post:
    post = get_object_or_404(Post.objects.select_related("author"), pk=pk)
    if post.author.user_id != request.user.pk:
        raise Http404("only the author may change this post")
    return post


def home(request: HttpRequest) -> HttpResponse:
    posts = Post.objects.filter(status=PostStatus.PUBLISHED).select_related("author")[:50]
    return render(request, "blog/home.html", {"posts": posts})


@login_required
def post_new(request: HttpRequest) -> HttpResponse:
    form = PostForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        publish = request.POST.get("action") != "draft"
        post = services.create_post(_author_of(request.user), form.cleaned_data["title"],
                                    form.cleaned_data["body"], publish=publish)
        messages.success(request, f"Published. {CATCH_UP}" if publish else "Draft saved.")
        return redirect(post)
    return render(request, "blog/post_form.html", {"form": form, "post": None})


def post_detail(request: HttpRequest, pk: int) -> HttpResponse:
    post = get_object_or_404(Post.objects.select_related("author"), pk=pk)
    mine = request.user.is_authenticated and post.author.user_id == request.user.pk
    if not post.is_published and not mine:
        raise Http404("no such post")
    return render(request, "blog/post_detail.html", {"post": post, "mine": mine})


@login_required
def post_edit(request: HttpRequest, pk: int) -> HttpResponse:
    post = _own_post(request, pk)
    form = PostForm(request.POST or None, instance=post)
    if request.method == "POST" and form.is_valid():
        publish = request.POST.get("action") == "publish"
        post = services.edit_post(post, form.cleaned_data["title"], form.cleaned_data["body"],
                                  publish=publish)
        messages.success(request, "Saved. " + (CATCH_UP if post.is_published else ""))
        return redirect(post)
    return render(request, "blog/post_form.html", {"form": form, "post": post})


@login_required
@require_POST
def post_publish(request: HttpRequest, pk: int) -> HttpResponse:
    post = services.publish_post(_own_post(request, pk))
    messages.success(request, f"Published. {CATCH_UP}")
    return redirect(post)


@login_required
@require_POST
def post_unpublish(request: HttpRequest, pk: int) -> HttpResponse:
    post = services.unpublish_post(_own_post(request, pk))
    messages.success(request, "Unpublished: it is a draft again, visible only to you.")
    return redirect(post)


@login_required
def post_delete(request: HttpRequest, pk: int) -> HttpResponse:
    post = _own_post(request, pk)
    if request.method == "POST":
        services.delete_post(post)
        messages.success(request, f"Deleted \u201c{post.title}\u201d. {CATCH_UP}")
        return redirect(post.author)
    return render(request, "blog/post_confirm_delete.html", {"post": post})


def author_detail(request: HttpRequest, pk: int) -> HttpResponse:
    author = get_object_or_404(Author, pk=pk)
    mine = request.user.is_authenticated and author.user_id == request.user.pk
    posts = author.posts.all() if mine else author.posts.filter(status=PostStatus.PUBLISHED)
    counted = PublishedCount.objects.filter(author=author).values_list("published",
                                                                       flat=True).first()
    return render(request, "blog/author_detail.html", {
        "author": author, "posts": posts, "mine": mine, "published_count": counted or 0,
        "group": group_status("post-counter")})


def search_view(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()
    results = search.search(q) if q else []
    return render(request, "blog/search.html", {
        "q": q, "results": results, "group": group_status("search-index"),
        "rebuilds": IndexRebuild.objects.order_by("-pk")[:3]})


@login_required
@require_POST
def rebuild_start(request: HttpRequest) -> HttpResponse:
    from .tasks import rebuild_search_index

    with transaction.atomic():  # the progress row and its job exist together, or neither
        rebuild = IndexRebuild.objects.create(requested_by=request.user)
        result = rebuild_search_index.enqueue(rebuild.pk)
        rebuild.job_id = result.id
        rebuild.save(update_fields=["job_id"])
    return redirect(rebuild)


def rebuild_detail(request: HttpRequest, pk: int) -> HttpResponse:
    rebuild = get_object_or_404(IndexRebuild, pk=pk)
    from eventjobs.models import Job

    job = Job.objects.filter(pk=int(rebuild.job_id)).first() if rebuild.job_id else None
    return render(request, "blog/rebuild_detail.html", {"rebuild": rebuild, "job": job})


def activity(request: HttpRequest) -> HttpResponse:
    return render(request, "blog/activity.html", {
        "entries": ActivityEntry.objects.all()[:100], "count": ActivityEntry.objects.count(),
        "group": group_status("activity")})


@login_required
@require_POST
def activity_replay(request: HttpRequest) -> HttpResponse:
    from eventjobs.events import control
    from eventjobs.exceptions import GroupNotFound

    try:
        # One transaction: the reset waits for a batch in flight, then the feed is emptied;
        # whatever that batch wrote is delivered again, from the beginning of the log.
        with transaction.atomic():
            plan = control.reset("activity", "beginning")
            ActivityEntry.objects.all().delete()
    except GroupNotFound:
        messages.error(request, "The activity group has not run yet: start "
                                "`python manage.py consume` first.")
        return redirect("activity")
    messages.success(request, f"Feed emptied and the activity group reset to the beginning "
                              f"of the log: {plan.redeliveries} event(s) to replay.")
    return redirect("activity")


def how_it_works(request: HttpRequest) -> HttpResponse:
    template = "blog/_live.html" if request.GET.get("fragment") else "blog/how_it_works.html"
    return render(request, template, live_status())
