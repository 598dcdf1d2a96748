"""Plotly figures: top-k bars and hoverable heatmap overlays."""

from __future__ import annotations

import base64

import cv2
import numpy as np
import plotly.graph_objects as go

from xai_core import render

DISPLAY_SIDE = 320
HOVER_SIDE = 112


def fit(a: np.ndarray, side: int) -> np.ndarray:
    """Shrink an image or map so its longer side is at most ``side``."""
    h, w = a.shape[:2]
    s = side / max(h, w)
    if s >= 1:
        return a
    return cv2.resize(a, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def display(a: np.ndarray, side: int) -> np.ndarray:
    """An image for the screen: shrunk like :func:`fit` when it is larger than ``side``; a small one (the lab's 64×64
    images) enlarged by a whole factor, pixels kept square, so its longer side is at most ``side``."""
    k = side // max(a.shape[:2])
    return np.repeat(np.repeat(a, k, 0), k, 1) if k >= 2 else fit(a, side)


def top_k(probs: np.ndarray, labels: list[str], k: int = 5) -> go.Figure:
    idx = np.argsort(-probs)[:k][::-1]
    fig = go.Figure(go.Bar(
        x=probs[idx], y=[f"{labels[i]} ({i})" for i in idx], orientation="h",
        marker_color=["#c0392b" if j == len(idx) - 1 else "#e6a59f" for j in range(len(idx))],
        text=[f"{probs[i]:.1%}" for i in idx], textposition="auto",
        hovertemplate="%{y}: %{x:.2%}<extra></extra>"))
    fig.update_layout(height=230, margin=dict(l=8, r=8, t=28, b=8), title="Top-5 predictions",
                      xaxis=dict(range=[0, 1], tickformat=".0%"), yaxis=dict(automargin=True))
    return fig


def overlay_small(image: np.ndarray, raw: np.ndarray, signed: bool, *, alpha: float, cmap: str,
                  side: int = DISPLAY_SIDE) -> np.ndarray:
    """The heatmap blended over the image, both shrunk to at most ``side`` pixels."""
    img = display(image, side)
    h, w = img.shape[:2]
    how = cv2.INTER_AREA if w <= raw.shape[1] else cv2.INTER_LINEAR
    return render.overlay(img, cv2.resize(raw, (w, h), interpolation=how), signed, alpha=alpha, cmap=cmap)


def heatmap(image: np.ndarray, raw: np.ndarray, signed: bool, *, alpha: float, cmap: str, title: str) -> go.Figure:
    """The overlay as an image, with the raw attribution shown on hover."""
    over = overlay_small(image, raw, signed, alpha=alpha, cmap=cmap)
    h, w = over.shape[:2]
    uri = "data:image/png;base64," + base64.b64encode(render.to_png(over)).decode()
    coarse = fit(raw, HOVER_SIDE)
    ch, cw = coarse.shape
    fig = go.Figure(go.Image(source=uri, hoverinfo="skip"))
    fig.add_trace(go.Heatmap(
        z=coarse, x0=(w / cw - 1) / 2, dx=w / cw, y0=(h / ch - 1) / 2, dy=h / ch, opacity=0, showscale=False,
        hovertemplate="x %{x:.0f}, y %{y:.0f}<br>raw value %{z:.3g}<extra></extra>"))
    fig.update_layout(title=dict(text=title, font=dict(size=14)), height=int(h * 1.0) + 50,
                      margin=dict(l=0, r=0, t=40, b=0), xaxis=dict(visible=False, range=[-0.5, w - 0.5]),
                      yaxis=dict(visible=False, range=[h - 0.5, -0.5], scaleanchor="x"))
    return fig
