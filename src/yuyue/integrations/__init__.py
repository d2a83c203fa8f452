"""Adapters for services we call over the network: SMS gateways, WeChat, Alipay."""
