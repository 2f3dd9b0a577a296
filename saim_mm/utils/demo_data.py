"""The command line of the tools that write the small detection / segmentation demo data sets."""
import argparse


def parse_demo_data_args(description: str) -> argparse.Namespace:
    """Parse ``OUT [--train N] [--val N] [--size PX] [--seed S]``; a size under 16 pixels is an error."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('out', help='output folder')
    parser.add_argument('--train', type=int, default=32, help='training images')
    parser.add_argument('--val', type=int, default=8, help='validation images')
    parser.add_argument('--size', type=int, default=64, help='image height in pixels')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    if args.size < 16:
        parser.error(f'--size must be at least 16, got {args.size}')
    return args
