"""ETTh1 as Time-Series-Library's `Dataset_ETT_hour` reads it, for the bench's PyTorch scripts."""
import os

import pandas as pd


def ett_hour_split(root, flag, seq_len):
    """The rows of split `flag` (train/val/test, TSLib's borders, each split starting `seq_len`
    rows early so its first window ends at the border), scaled by the train rows' mean and std,
    and their dates."""
    df = pd.read_csv(os.path.join(root, "ETTh1/ETTh1.csv"))
    b1 = [0, 12 * 30 * 24 - seq_len, 12 * 30 * 24 + 4 * 30 * 24 - seq_len]
    b2 = [12 * 30 * 24, 12 * 30 * 24 + 4 * 30 * 24, 12 * 30 * 24 + 8 * 30 * 24]
    i = {"train": 0, "val": 1, "test": 2}[flag]
    data = df[df.columns[1:]].values
    train = data[b1[0]:b2[0]]
    data = (data - train.mean(0)) / train.std(0)
    return data[b1[i]:b2[i]], df["date"].values[b1[i]:b2[i]]
