mod suite {}
