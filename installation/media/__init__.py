"""Pictures in and out: sources (camera, video, synthetic, NDI) behind one recv()/close() contract, the
sample clip, the video recorder, the output stage (NDI sender, virtual camera)."""
