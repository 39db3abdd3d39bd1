"""Analysis of fitted maps: segmentation, region statistics, histograms, profiles."""
