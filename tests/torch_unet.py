"""specs/unet.yaml written in PyTorch, as most implementations write the 2015 U-Net.

Imported as `from torch_unet import unet_module`; torch is passed in, never imported here.
"""

from __future__ import annotations

from typing import Any


def unet_module(torch: Any, channels: int = 1, classes: int = 2) -> Any:
    """The U-Net of Ronneberger et al. 2015 with padding-1 3x3 convolutions; submodules named
    as the spec's layers."""
    nn = torch.nn

    def double_conv(cin: int, cout: int) -> Any:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                             nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True))

    class Down(nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.pool = nn.MaxPool2d(2)
            self.conv = double_conv(cin, cout)

        def forward(self, x: Any) -> Any:
            return self.conv(self.pool(x))

    class UNet(nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.inc = double_conv(channels, 64)
            self.down1, self.down2 = Down(64, 128), Down(128, 256)
            self.down3, self.down4 = Down(256, 512), Down(512, 1024)
            self.up1 = nn.ConvTranspose2d(1024, 512, 2, stride=2)
            self.dec1 = double_conv(1024, 512)
            self.up2 = nn.ConvTranspose2d(512, 256, 2, stride=2)
            self.dec2 = double_conv(512, 256)
            self.up3 = nn.ConvTranspose2d(256, 128, 2, stride=2)
            self.dec3 = double_conv(256, 128)
            self.up4 = nn.ConvTranspose2d(128, 64, 2, stride=2)
            self.dec4 = double_conv(128, 64)
            self.outc = nn.Conv2d(64, classes, 1)

        def forward(self, x: Any) -> Any:
            x1 = self.inc(x)
            x2 = self.down1(x1)
            x3 = self.down2(x2)
            x4 = self.down3(x3)
            x = self.down4(x4)
            x = self.dec1(torch.cat([x4, self.up1(x)], dim=1))
            x = self.dec2(torch.cat([x3, self.up2(x)], dim=1))
            x = self.dec3(torch.cat([x2, self.up3(x)], dim=1))
            x = self.dec4(torch.cat([x1, self.up4(x)], dim=1))
            return self.outc(x)

    return UNet()
