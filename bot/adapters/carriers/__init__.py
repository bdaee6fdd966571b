"""Carrier adapters (SF Express, Deppon, Kuaidi100): HTTP clients behind handlers.carriers.CarrierClient."""
