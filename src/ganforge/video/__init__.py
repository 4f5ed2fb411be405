"""Video: clips as GIF and MP4 files with provenance, and the ``video`` modality (registered on import)."""

from .gif import FPS, gif_bytes, read_gif, read_provenance, write_gif, write_mp4
from .modality import GIF, VIDEO, VIDEO_SUFFIXES, VideoModality, grid_frames

__all__ = ["FPS", "GIF", "VIDEO", "VIDEO_SUFFIXES", "VideoModality", "gif_bytes", "grid_frames", "read_gif", "read_provenance",
           "write_gif", "write_mp4"]
