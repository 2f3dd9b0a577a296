import os.path as osp
from typing import Optional

from mmcv.transforms import LoadImageFromFile
from mmpretrain.registry import TRANSFORMS


class ImageLoadError(OSError):
    """An image file that cannot be read or decoded; the message names the file."""


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` whose failures always name the file.

    Decoding is mmcv's (cv2 by default). With ``color_type='color'`` (the default) grey-scale, palette,
    16-bit and CMYK images come out as 3-channel uint8 and the alpha channel of RGBA images is dropped, so
    every sample has shape (H, W, 3). Where mmcv lets the decoder's own exception through (an empty file
    gives ``cv2.error: !buf.empty()``, pillow gives ``cannot identify image file <BytesIO ...>``) or fails
    an ``assert`` (gone under ``python -O``), this transform raises :class:`ImageLoadError` with the path,
    the size and the reason; a decoded image without the expected channels is rejected the same way. In a
    data-loader worker the error reaches the training process with its message, so a bad file stops
    training at once with its name instead of hanging or training on a broken sample.

    Args:
        **kwargs: Arguments of :class:`mmcv.transforms.LoadImageFromFile`. With ``ignore_empty=True`` a
            file that cannot be read returns None (mmengine's dataset then draws another sample), as in mmcv.
    """

    def transform(self, results: dict) -> Optional[dict]:
        if 'img_path' not in results and 'img' in results:
            # already decoded: mmpretrain's inferencers read the image and drop only ``LoadImageFromFile``
            return results
        filename = results['img_path']
        try:
            out = super().transform(results)
        except Exception as err:
            if self.ignore_empty:
                return None
            raise ImageLoadError(self._message(filename, err)) from None
        if out is None:
            return None
        img = out['img']
        if self.color_type == 'color' and (img.ndim != 3 or img.shape[2] != 3):
            raise ImageLoadError(f'Image {filename} decoded to shape {img.shape}; expected (H, W, 3).')
        return out

    def _message(self, filename: str, err: Exception) -> str:
        remote = self.backend_args is not None or self.file_client_args is not None
        if remote:
            return f'Cannot load image {filename}: {type(err).__name__}: {str(err).strip()}.'
        if not osp.isfile(filename):
            return f'Cannot load image {filename}: the file does not exist.'
        size = osp.getsize(filename)
        if size == 0:
            return f'Cannot load image {filename}: the file is empty (0 bytes).'
        if isinstance(err, AssertionError):  # mmcv: the decoder returned None
            reason = 'the decoder cannot read it (truncated, corrupt or not an image)'
        else:
            reason = f'{type(err).__name__}: {str(err).strip()}'
        return f'Cannot load image {filename} ({size} bytes): {reason}.'
