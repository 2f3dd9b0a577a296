# A clockwise spiral from the top-left corner inwards, the same for every image (AIM studies spiral orders).
_base_ = ['../vitb_800e.py']
model = dict(order='spiral')
