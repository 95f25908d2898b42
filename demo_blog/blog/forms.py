from __future__ import annotations

from django import forms

from .models import Post


class PostForm(forms.ModelForm):
    class Meta:
        model = Post
        fields = ["title", "body"]
        labels = {"title": "Title", "body": "Body"}
        widgets = {"title": forms.TextInput(attrs={"autofocus": True, "size": 60}),
                   "body": forms.Textarea(attrs={"rows": 14, "cols": 70})}
