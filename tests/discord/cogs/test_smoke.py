"""The bot starts on the fake Discord and /check answers privately with the match and a button."""

from __future__ import annotations

from tests.discord.cogs.conftest import query_bytes
from tests.discord.fake_discord import BotHarness


async def test_check_answers_ephemerally_with_the_match_and_a_request_button(
    desk_harness: BotHarness,
) -> None:
    fake, world = desk_harness.fake, desk_harness.world
    image = fake.add_attachment(query_bytes("coffee__mirrored.jpg"), "IMG_0001.jpg", "image/jpeg")
    desk_harness.dispatch_interaction(world.command_interaction("check", options={"image": image}))
    await desk_harness.idle()
    callback = fake.last("POST", r"/interactions/\d+/[^/]+/callback")
    assert callback.json["type"] == 5
    assert callback.json["data"]["flags"] & 64
    followup = fake.last("POST", r"/webhooks/\d+/[^/]+$")
    assert "coffee.jpg" in str(followup.json["embeds"])
    assert followup.json["components"][0]["components"][0]["custom_id"].startswith("rd:request:")
